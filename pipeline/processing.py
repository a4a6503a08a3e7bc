"""Run a chain on one image file and write its outputs.

The chain runs depth first and lazily: each image a split makes goes through the rest of the
chain, is encoded and is written to its temporary file before the next quadrant starts. Each
step's result replaces the image it was made from, and an output's pixels and encoding are
let go once it is written, so a call holds one output's images and encoding at a time,
whatever the number of outputs, beside the images its splits cut up: quadrants are views of
them, so a split copies nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pipeline.chain import Chain
from pipeline.colour import to_srgb
from pipeline.decoding import Source, decode, decode_reduced, open_input
from pipeline.embedded import Embedded
from pipeline.encoding import Encoded, EncodeOptions, encode_image
from pipeline.errors import InvalidOperation
from pipeline.limits import DEFAULT_LIMITS, Limits
from pipeline.metadata import carried
from pipeline.operation import Image
from pipeline.operations import resize
from pipeline.outputs import output_format, output_paths
from pipeline.parsing import chain_problem
from pipeline.planning import plan_sizes
from pipeline.writing import refuse_overwriting_input, write_outputs


def process_image(
    input_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    chain: Chain,
    *,
    encode: EncodeOptions = EncodeOptions(),  # noqa: B008 (frozen, so sharing it is safe)
    limits: Limits = DEFAULT_LIMITS,
    on_step: Callable[[str, float], None] | None = None,
    retry: bool = False,
) -> list[Path]:
    """Run a chain on one image and write its outputs atomically; return their paths.

    Outputs are named as output_paths names them, in output order. on_step(name, seconds)
    is called once for "decode" (reading, checking and decoding), once per application of
    each step (a blur after two splits: 16 calls) and once for "encode" (encoding and
    writing every output).
    Outputs are encoded and written one at a time; none is moved into place before all are
    written, so a failure at any output leaves none of them (see pipeline.writing).
    retry: this call redoes one that may have been killed between writing its temporary
    files and moving them into place; remove those first (see pipeline.writing).
    Raises UnsupportedFormat, InvalidOperation (a step that cannot apply to this image),
    ImageDecodeError, LimitExceeded or ImageWriteError; then no output of this call exists.
    """
    output = os.fspath(output_path)
    image_format = output_format(output)
    problem = chain_problem(chain.steps, limits, "/operations")
    if problem is not None:
        raise InvalidOperation([problem])
    paths = [Path(path) for path in output_paths(output, chain.output_count)]
    refuse_overwriting_input(input_path, paths)
    seconds: list[list[float]] = [[] for _ in chain]  # each step's applications

    started = time.perf_counter()
    source = open_input(input_path, limits)
    plan_sizes(chain, *source.header.size, limits=limits)
    image, first, embedded = _decode_for(source, chain, limits, seconds)
    if encode.color != "keep":
        image = to_srgb(image, embedded.profile)
    kept = carried(embedded, encode.metadata, embedded.profile if encode.color == "keep" else None)
    decoding = time.perf_counter() - started - _total(seconds)

    leaves = _outputs(image, chain, first, seconds)
    del image, source  # the generator lets the image go once the step after it has run
    started, stepped = time.perf_counter(), _total(seconds)
    write_outputs(_encoded(paths, leaves, image_format, encode, kept), retry=retry)
    encoding = time.perf_counter() - started - (_total(seconds) - stepped)

    if on_step is not None:
        on_step("decode", decoding)
        for step, applications in zip(chain, seconds, strict=True):
            for spent in applications:
                on_step(step.op, spent)
        on_step("encode", encoding)
    return paths


def _total(seconds: list[list[float]]) -> float:
    """Return the time of every step's applications together."""
    return sum(sum(applications) for applications in seconds)


def _decode_for(
    source: Source, chain: Chain, limits: Limits, seconds: list[list[float]]
) -> tuple[Image, int, Embedded]:
    """Decode, shrinking on load when the chain starts by shrinking a JPEG by 2 or more.

    Returns the image, the index of the first step still to run and what the file carries.
    The first resize's target comes from the full size, so both paths give outputs of
    identical sizes.
    """
    size = source.header.size
    if chain.steps and chain.steps[0].op == "resize":
        target = chain.steps[0].operation.sizes(*size, chain.steps[0].params)[0]
        reduced = decode_reduced(source, target)
        if reduced is not None:
            started = time.perf_counter()
            image = resize.resize_to(reduced.image, target)
            seconds[0].append(time.perf_counter() - started)
            return image, 1, reduced.embedded
    decoded = decode(source)
    image = decoded.image
    rows, cols = image.shape[:2]
    if (cols, rows) != size:
        # The header disagreed with the decoder: plan again with the size that was decoded.
        plan_sizes(chain, cols, rows, limits=limits)
    return image, 0, decoded.embedded


def _outputs(image: Image, chain: Chain, index: int, seconds: list[list[float]]) -> Iterator[Image]:
    """Yield the chain's outputs from step index on, depth first, in output order.

    Each step's result replaces the image it was made from, and each image a fan-out makes is
    taken out of its list for its branch, so no image is kept once nothing needs it.
    """
    while index < len(chain):
        step = chain.steps[index]
        started = time.perf_counter()
        made = step.operation.apply(image, **step.params)
        seconds[index].append(time.perf_counter() - started)
        index += 1
        if isinstance(made, list):
            del image
            made.reverse()
            while made:
                yield from _outputs(made.pop(), chain, index, seconds)
            return
        image = made
    yield image


def _encoded(
    paths: list[Path],
    leaves: Iterator[Image],
    image_format: str,
    options: EncodeOptions,
    carried: Embedded,
) -> Iterator[tuple[Path, Encoded]]:
    """Encode each output as it is made, keeping no reference to it once it is handed on."""
    for path in paths:
        yield path, encode_image(next(leaves), image_format, options, path.name, carried)
