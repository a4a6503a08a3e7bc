"""Validate a job before anything is enqueued, naming every problem with a pointer.

Structure is checked by the pydantic models, operations and encoder settings by
the pipeline's declarations, and each image against the storage root and its own
header (its size, so that a chain that would exceed the pixel limits is refused
now rather than failing later). Nothing is written here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

import pipeline
from app.models import JobRequest
from pipeline import Problem
from worker.paths import InRoot, OutputRoot, UnsafePath, output_root
from worker.settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class PlannedImage:
    """An image of a valid job, with the outputs it will write (as the request wrote them)."""

    input: str
    output: str
    outputs: list[str]


@dataclass(frozen=True)
class ValidJob:
    """A job that passed validation: its normalized chain, encoder settings and images."""

    chain: pipeline.Chain
    encode: pipeline.EncodeOptions
    images: list[PlannedImage]
    overwrite: bool = True
    """Whether its outputs may replace existing files."""


class JobProblems(Exception):
    """Raised when a job is not valid; problems lists every one."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


def pointer(*parts: object) -> str:
    """Return the JSON Pointer (RFC 6901) of a location."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def validate_job(payload: object, settings: Settings) -> ValidJob:
    """Return the valid job, or raise JobProblems naming every problem."""
    if not isinstance(payload, dict):
        raise JobProblems(
            [Problem("", "the body must be a JSON object with images and operations")]
        )
    problems: list[Problem] = []
    request: JobRequest | None = None
    try:
        request = JobRequest.model_validate(payload)
    except ValidationError as exc:
        problems += [_from_pydantic(error) for error in exc.errors()]
    operations = payload.get("operations")  # a missing list is reported by the model
    chain = (
        None
        if operations is None
        else _collect(
            problems, lambda: pipeline.parse_operations(operations, limits=settings.limits)
        )
    )
    encode = _collect(problems, lambda: pipeline.parse_encode_options(payload.get("encode")))
    images: list[PlannedImage] = []
    if request is not None:
        if len(request.images) > settings.max_images:
            problems.append(
                Problem(
                    "/images",
                    f"a job may have at most {settings.max_images} images; "
                    f"this one has {len(request.images)}",
                )
            )
        else:
            images, pixels = _plan_images(request, chain, settings, problems)
            problems += _over_budget(images, pixels, settings)
    if problems or chain is None or encode is None:
        raise JobProblems(problems)
    return ValidJob(
        chain=chain, encode=encode, images=images, overwrite=_overwrite(request, settings)
    )


def _overwrite(request: JobRequest | None, settings: Settings) -> bool:
    """Return whether the job's outputs may replace files: its own word, else the setting."""
    if request is not None and request.overwrite is not None:
        return request.overwrite
    return settings.overwrite == "replace"


def _collect(problems: list[Problem], parse: Callable[[], T]) -> T | None:
    """Run a pipeline parser, adding its problems to the list instead of raising."""
    try:
        return parse()
    except pipeline.InvalidOperation as exc:
        problems.extend(exc.problems)
        return None


def _from_pydantic(error: Any) -> Problem:
    """Turn one pydantic error into a problem with a pointer."""
    location = error["loc"]
    if error["type"] == "extra_forbidden":
        return Problem(pointer(*location), f"unknown field {location[-1]!r}")
    if error["type"] == "missing":
        return Problem(pointer(*location), f"{location[-1]!r} is required")
    return Problem(pointer(*location), error["msg"])


def _over_budget(images: list[PlannedImage], pixels: int, settings: Settings) -> list[Problem]:
    """Return a problem for each of the job's budgets its plan exceeds (outputs, pixels)."""
    problems = []
    outputs = sum(len(image.outputs) for image in images)
    if outputs > settings.max_job_outputs:
        problems.append(
            Problem(
                "/images",
                f"the job would write {outputs:,} outputs, more than "
                f"IMGSERVE_MAX_JOB_OUTPUTS allows ({settings.max_job_outputs:,})",
            )
        )
    if pixels > settings.max_job_pixels:
        problems.append(
            Problem(
                "/images",
                f"the job's outputs would total {pixels:,} pixels, more than "
                f"IMGSERVE_MAX_JOB_PIXELS allows ({settings.max_job_pixels:,})",
            )
        )
    return problems


def _plan_images(
    request: JobRequest, chain: pipeline.Chain | None, settings: Settings, problems: list[Problem]
) -> tuple[list[PlannedImage], int]:
    """Check every image's paths, and its sizes when the chain is valid.

    Return the plan and the pixels of every output it plans.
    """
    planned: list[PlannedImage] = []
    pixels = 0
    roots = InRoot(settings.inputs), output_root(settings)
    overwrite = _overwrite(request, settings)
    writers: dict[Path, str] = {}
    inputs: dict[Path, str] = {}
    resolved_outputs: list[list[Path]] = []
    for n, image in enumerate(request.images):
        source = _input_path(image.input, n, roots[0], problems)
        outputs = pipeline.output_paths(image.output, chain.output_count if chain else 1)
        targets = _output_paths(image.output, outputs, n, roots[1], overwrite, problems)
        if source is not None:
            inputs.setdefault(source, pointer("images", n, "input"))
            if chain is not None:
                pixels += _check_size(source, image.input, n, chain, settings, problems)
        resolved_outputs.append(targets)
        planned.append(PlannedImage(image.input, image.output, outputs))
    for n, targets in enumerate(resolved_outputs):
        here = pointer("images", n, "output")
        for target in targets:
            if target in inputs:
                problems.append(
                    Problem(here, f"output would overwrite the input at {inputs[target]}")
                )
            elif writers.setdefault(target, here) != here:
                problems.append(
                    Problem(here, f"output {target.name!r} is also written by {writers[target]}")
                )
    return planned, pixels


def _input_path(path: str, n: int, inputs: InRoot, problems: list[Problem]) -> Path | None:
    """Resolve an input inside the root; the same words for missing and outside."""
    where = pointer("images", n, "input")
    try:
        source = inputs.resolve(path)
    except UnsafePath as exc:
        if str(exc) != "is outside the storage root":
            problems.append(Problem(where, f"input {path!r} {exc}"))
            return None
        source = None
    if source is None or not source.is_file():
        problems.append(Problem(where, f"input {path!r} is not a file in the storage root"))
        return None
    return source


def _output_paths(
    output: str,
    outputs: list[str],
    n: int,
    root: OutputRoot,
    overwrite: bool,
    problems: list[Problem],
) -> list[Path]:
    """Resolve an image's outputs where imgserve may write them and check their format."""
    where = pointer("images", n, "output")
    try:
        pipeline.output_format(output)
        targets = [root.writable(path, overwrite=True) for path in outputs]
    except pipeline.UnsupportedFormat as exc:
        problems.append(Problem(where, exc.detail))
        return []
    except UnsafePath as exc:
        problems.append(Problem(where, f"output {output!r} {exc}"))
        return []
    for path, target in zip(outputs, targets, strict=True):
        if target.is_dir():
            problems.append(Problem(where, f"output {target.name!r} is an existing folder"))
            return []
        if not overwrite and os.path.lexists(target):
            problems.append(
                Problem(
                    where,
                    f"output {path!r} already exists, and the job does not replace "
                    "files (overwrite: false)",
                )
            )
            return []
    return targets


def _check_size(
    source: Path,
    path: str,
    n: int,
    chain: pipeline.Chain,
    settings: Settings,
    problems: list[Problem],
) -> int:
    """Read an input's header and check that the chain stays within the limits.

    Return the pixels of the outputs planned for it (0 when it cannot be planned).
    """
    try:
        width, height = pipeline.probe_size(source, limits=settings.limits)
        sizes = pipeline.plan_sizes(chain, width, height, limits=settings.limits)
    except pipeline.InvalidOperation as exc:
        problems += [
            Problem(p.pointer, f"{p.detail} (for input {path!r}, {width}x{height})")
            for p in exc.problems
        ]
    except pipeline.PipelineError as exc:
        problems.append(Problem(pointer("images", n, "input"), f"input {path!r}: {exc.detail}"))
    else:
        return sum(w * h for w, h in sizes)
    return 0
