"""Running one image of a job: resolve its paths in the sandbox, run the pipeline, time it.

A worker process keeps what it learnt of a job (``PreparedJob``) while it runs the
job's images: the spec, read once from the store; the parsed chain; and one
``InRoot`` for each storage root, whose folder cache serves all of the job's paths.
"""

from __future__ import annotations

import logging
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded

import pipeline
from worker.jobs import Job
from worker.paths import InRoot, UnsafePath
from worker.settings import Settings

log = logging.getLogger(__name__)

Timings = list[tuple[str, float]]
"""Each step of an image's processing and its seconds."""


class PreparedJob:
    """A job as a worker process runs it: its spec, chain and the roots its paths lie in."""

    def __init__(self, job: Job, settings: Settings) -> None:
        self.job = job
        self.inputs = InRoot(settings.inputs)
        self.outputs = (
            self.inputs if settings.outputs == settings.inputs else InRoot(settings.outputs)
        )
        self._parsed: tuple[pipeline.Chain, pipeline.EncodeOptions] | None = None

    def parsed(self, limits: pipeline.Limits) -> tuple[pipeline.Chain, pipeline.EncodeOptions]:
        """Return the job's chain and encode options, parsed on first use.

        Parsed when an image runs, not before, so that a chain this worker's limits refuse
        is each image's error.
        """
        if self._parsed is None:
            chain = pipeline.parse_operations(self.job.operations, limits=limits)
            self._parsed = chain, pipeline.parse_encode_options(self.job.encode)
        return self._parsed

    def resolve(self, path: str, role: str) -> Path:
        """Resolve an input or output path inside its root, as a pipeline error if it is not."""
        root = self.inputs if role == "input" else self.outputs
        try:
            return root.resolve(path)
        except UnsafePath as exc:
            raise pipeline.PipelineError(f"the {role} path {exc}") from None


def run_image(
    prepared: PreparedJob, index: int, settings: Settings, *, retry: bool = False
) -> tuple[str | None, Timings]:
    """Process one image; return its error (None on success) and each step's time.

    retry: an earlier attempt of this image may have been killed halfway through its write.
    """
    image = prepared.job.images[index]
    timings: Timings = []
    try:
        source = prepared.resolve(image.input, "input")
        target = prepared.resolve(image.output, "output")
        chain, encode = prepared.parsed(settings.limits)
        pipeline.process_image(
            source,
            target,
            chain,
            encode=encode,
            limits=settings.limits,
            on_step=lambda op, seconds: timings.append((op, seconds)),
            retry=retry,
        )
    except pipeline.PipelineError as exc:
        return exc.detail, timings
    except SoftTimeLimitExceeded:
        return soft_limit_error(settings), timings
    except Exception as exc:
        log.exception("image %d of job %s failed unexpectedly", index, prepared.job.id)
        return f"internal error: {type(exc).__name__}", timings
    return None, timings


def soft_limit_error(settings: Settings) -> str:
    """Return the error of an image stopped at the soft time limit."""
    return f"timed out: stopped at the soft time limit of {settings.soft_time_limit} s"
