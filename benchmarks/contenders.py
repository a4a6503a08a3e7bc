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
from PIL import Image, ImageFilter

from benchmarks.images import Pixels, read_pixels

JPEG_QUALITY = 90

Runner = Callable[[Path, Path], None]
Box = tuple[int, int, int, int]


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


def leading_shrink(steps: list[Step]) -> tuple[float | None, list[Step]]:
    """Split off a leading shrink's factor, which Pillow and pyvips apply while decoding."""
    if steps and steps[0].op == "resize" and steps[0].value < 1:
        return steps[0].value, steps[1:]
    return None, steps


def scaled_size(width: int, height: int, factor: float) -> tuple[int, int]:
    """Return the size of a resize by factor, by imgserve's rounding rule."""
    return max(1, round(width * factor)), max(1, round(height * factor))


def blur_sigma(kernel: int) -> float:
    """Return the sigma OpenCV derives from a Gaussian kernel size."""
    return 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8


def quadrants(width: int, height: int) -> list[Box]:
    """Return (left, top, right, bottom) of the four quadrants, top-left first."""
    w, h = width // 2, height // 2
    return [(0, 0, w, h), (w, 0, width, h), (0, h, w, height), (w, h, width, height)]


@dataclass(frozen=True)
class Library:
    """How one library sizes, crops, resizes and blurs an image of its own type."""

    size: Callable[[Any], tuple[int, int]]
    crop: Callable[[Any, Box], Any]
    resize: Callable[[Any, float], Any]
    blur: Callable[[Any, int], Any]

    def apply(self, steps: Sequence[Step], image: Any) -> list[Any]:
        """Run the steps on an image; a split turns each image into its four quadrants."""
        images = [image]
        for step in steps:
            if step.op == "split":
                images = [self.crop(i, box) for i in images for box in quadrants(*self.size(i))]
            elif step.op == "resize":
                images = [self.resize(image, step.value) for image in images]
            else:
                images = [self.blur(image, int(step.value)) for image in images]
        return images


def save_all(images: Sequence[Any], output: Path, save: Callable[[Any, Path], object]) -> None:
    """Save the images under imgserve's names: the path itself, or {stem}_{n}{ext}."""
    for n, image in enumerate(images, 1):
        numbered = output.with_name(f"{output.stem}_{n}{output.suffix}")
        save(image, output if len(images) == 1 else numbered)


def opencv_resize(image: Pixels, factor: float) -> Pixels:
    """Resize as imgserve does: area averaging to shrink, bicubic to enlarge."""
    size = scaled_size(image.shape[1], image.shape[0], factor)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def opencv_save(image: Pixels, path: Path) -> None:
    """Write an image with OpenCV at the benchmark's JPEG quality."""
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])


def vips_save(image: Any, path: Path) -> None:
    """Write a PNG at zlib level 1, as imgserve's default, or a JPEG with 4:2:0 chroma."""
    if path.suffix == ".png":
        image.write_to_file(str(path), compression=1)
    else:  # libvips turns chroma subsampling off at Q >= 90; the others write 4:2:0
        image.write_to_file(str(path), Q=JPEG_QUALITY, subsample_mode="on")


OPENCV = Library(
    size=lambda image: (image.shape[1], image.shape[0]),
    crop=lambda image, box: image[box[1] : box[3], box[0] : box[2]].copy(),
    resize=opencv_resize,
    blur=lambda image, kernel: cv2.GaussianBlur(image, (kernel, kernel), 0),
)
PILLOW = Library(
    size=lambda image: (image.width, image.height),
    crop=lambda image, box: image.crop(box),
    resize=lambda image, factor: image.resize(scaled_size(image.width, image.height, factor)),
    blur=lambda image, kernel: image.filter(ImageFilter.GaussianBlur(blur_sigma(kernel))),
)
VIPS = Library(
    size=lambda image: (image.width, image.height),
    crop=lambda image, box: image.crop(box[0], box[1], box[2] - box[0], box[3] - box[1]),
    resize=lambda image, factor: image.resize(factor),
    blur=lambda image, kernel: image.gaussblur(blur_sigma(kernel)),
)


def naive_opencv(chain: Sequence[str]) -> Runner:
    """Run the chain with plain OpenCV calls on a full decode, copying each quadrant."""
    steps = parse_chain(chain)

    def run(source: Path, output: Path) -> None:
        save_all(OPENCV.apply(steps, read_pixels(source)), output, opencv_save)

    return run


def pillow(chain: Sequence[str]) -> Runner:
    """Run the chain with Pillow: thumbnail() for a leading shrink, else resize() and filter()."""
    shrink, rest = leading_shrink(parse_chain(chain))

    def run(source: Path, output: Path) -> None:
        # Closing a Pillow image frees its pixels, so the whole chain runs inside the block.
        with Image.open(source) as image:
            if shrink is not None:
                # Pillow's documented way to a smaller copy: draft() the decoder, then reduce().
                image.thumbnail(scaled_size(*image.size, shrink))
            images = PILLOW.apply(rest, image)
            save_all(images, output, lambda out, path: out.save(path, quality=JPEG_QUALITY))

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
    vips, steps = load_pyvips(), parse_chain(chain)
    shrink, rest = leading_shrink(steps)
    # Quadrants are written one after another, so a split needs random access.
    access = "random" if any(step.op == "split" for step in steps) else "sequential"

    def run(source: Path, output: Path) -> None:
        if shrink is None:
            image = vips.Image.new_from_file(str(source), access=access)
        else:
            header = vips.Image.new_from_file(str(source))
            width, height = scaled_size(header.width, header.height, shrink)
            # thumbnail() premultiplies alpha and converts an embedded profile to sRGB.
            image = vips.Image.thumbnail(
                str(source), width, height=height, size="force", export_profile="srgb"
            )
        save_all(VIPS.apply(rest, image), output, vips_save)

    return run


def codec_floor(outputs: Sequence[tuple[str, Pixels]]) -> Runner:
    """Decode the input in full and encode the given output pixels, doing nothing else."""

    def run(source: Path, output: Path) -> None:
        read_pixels(source)
        for name, pixels in outputs:
            opencv_save(pixels, output.parent / name)

    return run


PEERS = {"naive": naive_opencv, "Pillow": pillow, "pyvips": pyvips_chain}
