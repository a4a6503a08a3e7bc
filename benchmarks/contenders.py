"""The peers imgserve is measured against: naive OpenCV, Pillow, pyvips and the codec floor.

Each peer runs the seed chains' three operations the way a plain user of that library would
write them, names its outputs as imgserve does and writes JPEG quality 90 with 4:2:0 chroma.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cv2
from cv2.typing import MatLike
from PIL import Image, ImageFilter

JPEG_QUALITY = 90

Pixels = MatLike
Runner = Callable[[Path, Path], None]


@dataclass(frozen=True)
class Step:
    """One operation of a chain: split into quadrants, resize by a factor or blur."""

    op: str
    value: float = 0.0


def parse_chain(chain: Sequence[str]) -> list[Step]:
    """Parse the seed chains' operations: split, resize=<factor> and blur=<kernel>."""
    steps = []
    for item in chain:
        name, _, value = item.partition("=")
        if name not in ("split", "resize", "blur"):
            raise ValueError(f"the benchmark's peers do not implement {item!r}")
        steps.append(Step(name, float(value or 0)))
    return steps


def scaled_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """Return the size of a resize by factor, by imgserve's rounding rule."""
    return max(1, round(width * factor)), max(1, round(height * factor))


def blur_sigma(kernel: int) -> float:
    """Return the sigma OpenCV derives from a Gaussian kernel size."""
    return 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8


def output_paths(output: Path, count: int) -> list[Path]:
    """Name count outputs as imgserve does: the path itself, or {stem}_{n}{ext}."""
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}_{n}{output.suffix}") for n in range(1, count + 1)]


def quadrant_boxes(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Return (left, top, right, bottom) of the four quadrants, top-left first."""
    w, h = width // 2, height // 2
    return [(0, 0, w, h), (w, 0, width, h), (0, h, w, height), (w, h, width, height)]


def read_pixels(path: Path) -> Pixels:
    """Decode an image file in full to 8-bit BGR."""
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if pixels is None:
        raise OSError(f"OpenCV cannot read {path}")
    return pixels


def naive_opencv(chain: Sequence[str]) -> Runner:
    """Run the chain with plain OpenCV calls on a full decode, copying each quadrant."""
    steps = parse_chain(chain)

    def run(source: Path, output: Path) -> None:
        images = [read_pixels(source)]
        for step in steps:
            if step.op == "split":
                images = [
                    image[top:bottom, left:right].copy()
                    for image in images
                    for left, top, right, bottom in quadrant_boxes(image.shape[1], image.shape[0])
                ]
            elif step.op == "resize":
                shrink = step.value < 1
                images = [
                    cv2.resize(
                        image,
                        scaled_size(image.shape[1], image.shape[0], step.value),
                        interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC,
                    )
                    for image in images
                ]
            else:
                kernel = int(step.value)
                images = [cv2.GaussianBlur(image, (kernel, kernel), 0) for image in images]
        for image, path in zip(images, output_paths(output, len(images)), strict=True):
            cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])

    return run


def pillow(chain: Sequence[str]) -> Runner:
    """Run the chain with Pillow: thumbnail() for a leading shrink, else resize() and filter()."""
    steps = parse_chain(chain)
    leading_shrink = bool(steps) and steps[0].op == "resize" and steps[0].value < 1

    def run(source: Path, output: Path) -> None:
        # Closing a Pillow image frees its pixels, so the whole chain runs inside the block.
        with Image.open(source) as opened:
            rest = steps
            if leading_shrink:
                # Pillow's documented way to a smaller copy: draft() the decoder, then reduce().
                opened.thumbnail(scaled_size(*opened.size, steps[0].value))
                rest = steps[1:]
            images: list[Image.Image] = [opened]
            for step in rest:
                if step.op == "split":
                    images = [im.crop(box) for im in images for box in quadrant_boxes(*im.size)]
                elif step.op == "resize":
                    images = [im.resize(scaled_size(*im.size, step.value)) for im in images]
                else:
                    blur = ImageFilter.GaussianBlur(blur_sigma(int(step.value)))
                    images = [im.filter(blur) for im in images]
            for image, path in zip(images, output_paths(output, len(images)), strict=True):
                image.save(path, quality=JPEG_QUALITY)

    return run


@cache
def load_pyvips() -> Any:
    """Import pyvips with one libvips worker thread and no operation cache."""
    # libvips reads VIPS_CONCURRENCY once, when it starts, so this must precede the import.
    os.environ["VIPS_CONCURRENCY"] = "1"
    import pyvips  # type: ignore[import-untyped]  # ships no type information

    # A service sees each image once; a warm operation cache would time only the final save.
    pyvips.cache_set_max(0)
    return pyvips


def pyvips_chain(chain: Sequence[str]) -> Runner:
    """Run the chain with pyvips: thumbnail() for a leading shrink, else resize/gaussblur/crop."""
    vips = load_pyvips()
    steps = parse_chain(chain)
    leading_shrink = bool(steps) and steps[0].op == "resize" and steps[0].value < 1
    fans_out = any(step.op == "split" for step in steps)

    def run(source: Path, output: Path) -> None:
        rest = steps
        if leading_shrink:
            header = vips.Image.new_from_file(str(source))
            width, height = scaled_size(header.width, header.height, steps[0].value)
            # thumbnail() premultiplies alpha and converts an embedded profile to sRGB.
            image = vips.Image.thumbnail(
                str(source), width, height=height, size="force", export_profile="srgb"
            )
            rest = steps[1:]
        else:
            # Quadrants are written one after another, so a split needs random access.
            image = vips.Image.new_from_file(
                str(source), access="random" if fans_out else "sequential"
            )
        images: list[Any] = [image]
        for step in rest:
            if step.op == "split":
                images = [
                    image.crop(left, top, right - left, bottom - top)
                    for image in images
                    for left, top, right, bottom in quadrant_boxes(image.width, image.height)
                ]
            elif step.op == "resize":
                images = [image.resize(step.value) for image in images]
            else:
                sigma = blur_sigma(int(step.value))
                images = [image.gaussblur(sigma) for image in images]
        for image, path in zip(images, output_paths(output, len(images)), strict=True):
            if path.suffix == ".png":  # zlib level 1, as imgserve's default
                image.write_to_file(str(path), compression=1)
            else:  # libvips turns chroma subsampling off at Q >= 90; the others write 4:2:0
                image.write_to_file(str(path), Q=JPEG_QUALITY, subsample_mode="on")

    return run


def codec_floor(outputs: Sequence[tuple[str, Pixels]]) -> Runner:
    """Decode the input in full and encode the given output pixels, doing nothing else."""

    def run(source: Path, output: Path) -> None:
        read_pixels(source)
        for name, pixels in outputs:
            cv2.imwrite(str(output.parent / name), pixels, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])

    return run
