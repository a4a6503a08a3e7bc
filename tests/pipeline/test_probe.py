from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pytest

from pipeline import (
    ImageDecodeError,
    LimitExceeded,
    Limits,
    UnsupportedFormat,
    probe_size,
)

if TYPE_CHECKING:
    from conftest import Craft


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("a.jpg", ()),
        ("a.jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
        ("a.png", ()),
        ("a.webp", (cv2.IMWRITE_WEBP_QUALITY, 80)),  # VP8, lossy
        ("a.webp", (cv2.IMWRITE_WEBP_QUALITY, 101)),  # VP8L, lossless
        ("a.bmp", ()),
        ("a.tif", ()),
    ],
)
def test_probe_size_reads_width_and_height_from_each_format(
    write: Callable[..., Path], image: np.ndarray, name: str, params: tuple[int, ...]
) -> None:
    assert probe_size(write(name, image, params)) == (37, 23)


def test_probe_size_recognizes_a_format_by_content_not_name(
    write: Callable[..., Path], image: np.ndarray, tmp_path: Path
) -> None:
    path = write("a.png", image)
    path.rename(tmp_path / "misnamed.jpg")
    assert probe_size(tmp_path / "misnamed.jpg") == (37, 23)


def test_probe_size_of_the_seed_photo(photo: Path) -> None:
    assert probe_size(photo) == (1024, 754)


@pytest.mark.parametrize("kind", ["jpeg", "png", "webp", "tiff"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_probe_size_applies_the_exif_orientation_as_opencv_does(
    craft: Craft, marked: np.ndarray, tmp_path: Path, kind: str, orientation: int
) -> None:
    data = getattr(craft, f"{kind}_oriented")(marked, orientation)
    path = tmp_path / f"oriented.{kind}"
    path.write_bytes(data)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert probe_size(path) == (decoded.shape[1], decoded.shape[0])
    assert probe_size(path) == ((40, 60) if orientation >= 5 else (60, 40))


def test_probe_size_does_not_read_pixels(craft: Craft, tmp_path: Path) -> None:
    path = tmp_path / "claims.png"
    path.write_bytes(craft.png_claiming(3000, 2000) + b"\x00" * 100)
    assert probe_size(path) == (3000, 2000)


@pytest.mark.parametrize("kind", ["png", "jpeg"])
def test_a_small_file_claiming_huge_dimensions_fails_fast(
    craft: Craft, tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"huge.{kind}"
    path.write_bytes(getattr(craft, f"{kind}_claiming")(20000, 20000))
    started = time.perf_counter()
    with pytest.raises(LimitExceeded) as caught:
        probe_size(path)
    assert time.perf_counter() - started < 0.25  # milliseconds, with room for a busy CI machine
    assert caught.value.detail == (
        f"huge.{kind}: 20000x20000 pixels (400 megapixels) is more than the limit of 100 megapixels"
    )


def test_the_pixel_limit_is_configurable(write: Callable[..., Path], image: np.ndarray) -> None:
    path = write("a.png", image)
    with pytest.raises(LimitExceeded) as caught:
        probe_size(path, limits=Limits(max_pixels=850))
    assert caught.value.detail == (
        "a.png: 37x23 pixels (0.000851 megapixels) is more than the limit of 0.00085 megapixels"
    )


def test_a_file_over_the_byte_limit_is_refused_before_reading(
    write: Callable[..., Path], image: np.ndarray
) -> None:
    path = write("a.bmp", image)
    with pytest.raises(LimitExceeded) as caught:
        probe_size(path, limits=Limits(max_input_bytes=1000))
    assert caught.value.detail == "a.bmp is 2630 bytes, more than the limit of 1000 bytes"


@pytest.mark.parametrize(
    ("name", "data", "error", "detail"),
    [
        ("empty.jpg", b"", ImageDecodeError, "empty.jpg is empty"),
        (
            "notes.txt", b"hello, this is not an image\n", ImageDecodeError,
            "notes.txt is not an image in a supported format (JPEG, PNG, WebP, TIFF, BMP, GIF, AVIF and HEIC)",
        ),
        (
            "scan.jp2", b"\x00\x00\x00\x0cjP  \r\n\x87\n", UnsupportedFormat,
            "scan.jp2 is a JPEG 2000 image; the supported formats are JPEG, PNG, WebP, TIFF, BMP, GIF, AVIF and HEIC",
        ),
        (
            "render.exr", b"v/1\x01\x02\x00\x00\x00", UnsupportedFormat,
            "render.exr is an OpenEXR image; the supported formats are JPEG, PNG, WebP, TIFF, BMP, GIF, AVIF and HEIC",
        ),
        (
            "cut.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF", ImageDecodeError,
            "cut.jpg is not a valid JPEG image: its header is damaged or cut short",
        ),
        (
            "cut.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", ImageDecodeError,
            "cut.png is not a valid PNG image: its header is damaged or cut short",
        ),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_supported_image_is_refused_with_a_sentence(
    tmp_path: Path, name: str, data: bytes, error: type[Exception], detail: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(error) as caught:
        probe_size(path)
    assert caught.value.detail == detail
    assert str(tmp_path) not in caught.value.detail


def test_a_header_claiming_an_empty_size_is_refused(craft: Craft, tmp_path: Path) -> None:
    path = tmp_path / "zero.png"
    path.write_bytes(craft.png_claiming(0, 10))
    with pytest.raises(ImageDecodeError, match=r"^zero.png claims an empty size of 0x10$"):
        probe_size(path)


def test_a_missing_file_or_a_folder_is_an_unreadable_image(tmp_path: Path) -> None:
    with pytest.raises(ImageDecodeError, match=r"^gone.jpg cannot be read: No such file"):
        probe_size(tmp_path / "gone.jpg")
    (tmp_path / "folder.jpg").mkdir()
    with pytest.raises(ImageDecodeError, match=r"^folder.jpg is a folder, not an image$"):
        probe_size(tmp_path / "folder.jpg")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(ImageDecodeError, match=r"^pipe.jpg is not a regular file$"):
        probe_size(tmp_path / "pipe.jpg")
