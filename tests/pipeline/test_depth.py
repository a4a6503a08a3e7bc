"""Depth and channels: gray stays one channel and 16-bit stays 16-bit where the format allows."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import parse_operations, process_image
from pipeline.operations.resize import resize

RNG = np.random.default_rng(16)


def deep_colour() -> np.ndarray:
    return RNG.integers(0, 65536, (40, 60, 3), dtype=np.uint16)


def gray() -> np.ndarray:
    return RNG.integers(0, 256, (40, 60), dtype=np.uint8)


INPUTS: dict[str, Callable[[], np.ndarray]] = {
    "deep.png": deep_colour,
    "deep.tif": deep_colour,
    "gray.jpg": gray,
    "gray.png": gray,
}
# (input, output) -> (channels, dtype) of the output as read back unchanged
EXPECTED = {
    "deep": {
        ".png": (3, np.uint16),
        ".tif": (3, np.uint16),
        ".webp": (3, np.uint8),
        ".jpg": (3, np.uint8),
    },
    "gray": {
        ".png": (1, np.uint8),
        ".tif": (1, np.uint8),
        ".webp": (3, np.uint8),
        ".jpg": (1, np.uint8),
    },
}


def channels(image: np.ndarray) -> int:
    return 1 if image.ndim == 2 else image.shape[2]


@pytest.mark.parametrize("name", INPUTS)
@pytest.mark.parametrize("item", ["resize=0.5", "blur=5", "split", "rotate=90", "sharpen=1"])
@pytest.mark.parametrize("extension", [".png", ".webp", ".jpg", ".tif"])
def test_channels_and_depth_survive_the_chain_where_the_format_holds_them(
    tmp_path: Path, name: str, item: str, extension: str
) -> None:
    path = tmp_path / name
    assert cv2.imwrite(str(path), INPUTS[name]())
    written = process_image(path, tmp_path / f"out{extension}", parse_operations([item]))
    out = cv2.imread(str(written[0]), cv2.IMREAD_UNCHANGED)
    assert (channels(out), out.dtype) == EXPECTED[name.split(".")[0]][extension]


def test_sixteen_bit_samples_are_rounded_to_eight_not_truncated(tmp_path: Path) -> None:
    flat = np.full(
        (8, 8, 3), 25829, np.uint16
    )  # 100.502 in 8 bits: rounds to 101, truncates to 100
    assert cv2.imwrite(str(tmp_path / "deep.png"), flat)
    [bmp] = process_image(tmp_path / "deep.png", tmp_path / "out.bmp", parse_operations([]))
    assert set(cv2.imread(str(bmp), cv2.IMREAD_UNCHANGED).ravel().tolist()) == {101}


def test_sixteen_bit_samples_are_kept_exactly_in_png(tmp_path: Path) -> None:
    picture = deep_colour()
    assert cv2.imwrite(str(tmp_path / "deep.png"), picture)
    [written] = process_image(
        tmp_path / "deep.png", tmp_path / "out.png", parse_operations(["rotate=180"])
    )
    assert np.array_equal(
        cv2.imread(str(written), cv2.IMREAD_UNCHANGED), cv2.rotate(picture, cv2.ROTATE_180)
    )


def test_a_gray_jpeg_shrinks_on_load_to_one_channel(tmp_path: Path) -> None:
    picture = cv2.resize(gray(), (480, 320), interpolation=cv2.INTER_CUBIC)
    assert cv2.imwrite(str(tmp_path / "gray.jpg"), picture)
    [written] = process_image(
        tmp_path / "gray.jpg", tmp_path / "out.png", parse_operations(["resize=0.25"])
    )
    out = cv2.imread(str(written), cv2.IMREAD_UNCHANGED)
    assert out.shape == (80, 120)
    full = resize(cv2.imread(str(tmp_path / "gray.jpg"), cv2.IMREAD_GRAYSCALE), factor=0.25)
    assert np.abs(out.astype(int) - full).mean() < 2
