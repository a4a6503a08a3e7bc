"""Make the benchmark's test photos from a seed photo, cached in benchmarks/.data/."""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from cv2.typing import MatLike

Pixels = MatLike

DATA_DIR = Path(__file__).resolve().parent / ".data"
DEFAULT_SEED = Path(__file__).resolve().parents[2] / "shared" / "seed-images" / "cyclo1.jpg"
PHOTO_SIZES: dict[int, tuple[int, int]] = {1: (1155, 866), 12: (4000, 3000), 24: (6000, 4000)}
JPEG_QUALITY = 90
# An enlarged seed is far smoother than a camera photo, so it codes unusually small and fast;
# luminance grain puts back the fine detail a sensor records, and with it a photo's coding cost.
GRAIN_SIGMA = 3.0
RECIPE = f"cubic-grain{GRAIN_SIGMA:g}-q{JPEG_QUALITY}"


def read_pixels(path: Path, flags: int = cv2.IMREAD_COLOR) -> Pixels:
    """Decode an image file with OpenCV, by default in full to 8-bit BGR."""
    pixels = cv2.imread(str(path), flags)
    if pixels is None:
        raise OSError(f"OpenCV cannot read {path}")
    return pixels


def photo_size(megapixels: int) -> tuple[int, int]:
    """Return the width and height of the test photo of about this many megapixels."""
    if megapixels in PHOTO_SIZES:
        return PHOTO_SIZES[megapixels]
    width = round(math.sqrt(megapixels * 1e6 * 4 / 3))
    return width, round(width * 3 / 4)


def make_photo(seed: Pixels, width: int, height: int) -> npt.NDArray[np.uint8]:
    """Crop the seed to the target's aspect ratio, enlarge it bicubically and add grain."""
    seed_height, seed_width = seed.shape[:2]
    if seed_width * height > seed_height * width:
        keep = round(seed_height * width / height)
        left = (seed_width - keep) // 2
        seed = seed[:, left : left + keep]
    else:
        keep = round(seed_width * height / width)
        top = (seed_height - keep) // 2
        seed = seed[top : top + keep]
    photo = cv2.resize(seed, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    grain = np.random.default_rng(width * height).normal(0.0, GRAIN_SIGMA, (height, width))
    photo += grain.astype(np.float32)[..., np.newaxis]
    return np.clip(photo, 0, 255).astype(np.uint8)


def ensure_photo(megapixels: int, seed: Path = DEFAULT_SEED) -> Path:
    """Return the cached test photo of this size, making it on first use."""
    width, height = photo_size(megapixels)
    path = DATA_DIR / f"{seed.stem}-{width}x{height}-{RECIPE}.jpg"
    if path.exists():
        return path
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.jpg")
    photo = make_photo(read_pixels(seed), width, height)
    if not cv2.imwrite(str(partial), photo, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
        raise OSError(f"cannot write {partial}")
    os.replace(partial, path)
    return path


def ensure_variant(megapixels: int, kind: str, seed: Path = DEFAULT_SEED) -> Path:
    """Return the photo as an RGBA PNG ("rgba") or a Display P3 JPEG ("p3"), made on first use."""
    photo = ensure_photo(megapixels, seed)
    path = DATA_DIR / f"{photo.stem}-{kind}{'.png' if kind == 'rgba' else '.jpg'}"
    if path.exists():
        return path
    from PIL import Image

    from tests.pipeline.colours import DISPLAY_P3, icc_profile

    partial = path.with_name(f".{path.name}.{os.getpid()}{path.suffix}")
    rgb = cv2.cvtColor(read_pixels(photo), cv2.COLOR_BGR2RGB)
    if kind == "rgba":  # a soft-edged ellipse on transparency
        rows, cols = np.ogrid[: rgb.shape[0], : rgb.shape[1]]
        radius = np.hypot((rows / rgb.shape[0] - 0.5) * 2, (cols / rgb.shape[1] - 0.5) * 2)
        alpha = (np.clip((1 - radius) * 20, 0, 1) * 255).astype(np.uint8)
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(partial, compress_level=1)
    else:
        profile = icc_profile("Display P3 compatible", DISPLAY_P3, srgb_curve=True)
        Image.fromarray(rgb).save(partial, quality=JPEG_QUALITY, icc_profile=profile)
    os.replace(partial, path)
    return path
