"""Damaged data fails loudly, with a sentence naming the file and what is wrong."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline import ImageDecodeError, parse_operations, process_image
from tests.pipeline.conftest import png_chunk

PICTURE = cv2.resize(
    np.random.default_rng(4).integers(0, 256, (16, 16, 3), dtype=np.uint8),
    (128, 96),
    interpolation=cv2.INTER_CUBIC,
)


def encoded(extension: str) -> bytes:
    ok, data = cv2.imencode(extension, PICTURE)
    assert ok
    return data.tobytes()


def corrupt_entropy_jpeg() -> bytes:
    """Overwrite part of a JPEG's compressed data with noise, keeping its end marker."""
    data = bytearray(encoded(".jpg"))
    middle = len(data) // 2
    data[middle : middle + 64] = bytes((i * 37 + 11) % 255 for i in range(64))
    return bytes(data)


def png_with_bad_idat_crc() -> bytes:
    data = bytearray(encoded(".png"))
    idat = data.index(b"IDAT")
    (length,) = struct.unpack_from(">I", data, idat - 4)
    data[idat + 4 + length] ^= 0xFF
    return bytes(data)


def png_with_bad_text_crc() -> bytes:
    data = encoded(".png")
    text = bytearray(png_chunk(b"tEXt", b"Comment\x00hello"))
    text[-1] ^= 0xFF
    return data[:33] + bytes(text) + data[33:]


def png_with_broken_zlib() -> bytes:
    data = bytearray(encoded(".png"))
    idat = data.index(b"IDAT")
    (length,) = struct.unpack_from(">I", data, idat - 4)
    data[idat + 4 : idat + 4 + length] = b"\x78\x01" + b"\xff" * (length - 2)
    data[idat + 4 + length : idat + 8 + length] = struct.pack(
        ">I", zlib.crc32(data[idat : idat + 4 + length])
    )
    return bytes(data)


def cut_short_webp() -> bytes:
    data = encoded(".webp")
    return data[: len(data) * 2 // 3]


CASES = {
    "noise.jpg": (
        corrupt_entropy_jpeg,
        "noise.jpg cannot be decoded: its JPEG data is damaged (Corrupt JPEG data: 205 extraneous bytes before marker 0xd9)",
    ),
    "crc.png": (
        png_with_bad_idat_crc,
        "crc.png cannot be decoded: its PNG data is damaged (its IDAT chunk fails its CRC check)",
    ),
    "text.png": (
        png_with_bad_text_crc,
        "text.png cannot be decoded: its PNG data is damaged (its tEXt chunk fails its CRC check)",
    ),
    "zlib.png": (
        png_with_broken_zlib,
        "zlib.png cannot be decoded: its PNG data is damaged (its compressed image data is broken (Error -3 while decompressing data: invalid block type))",
    ),
    "cut.webp": (
        cut_short_webp,
        "cut.webp cannot be decoded: its WebP data is damaged (it is cut short: it has 11480 of the 17220 bytes its header gives)",
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_damaged_data_fails_with_a_sentence_naming_the_file_and_the_damage(
    tmp_path: Path, name: str
) -> None:
    make, detail = CASES[name]
    (tmp_path / name).write_bytes(make())
    with pytest.raises(ImageDecodeError) as caught:
        process_image(tmp_path / name, tmp_path / "out.png", parse_operations(["resize=0.5"]))
    assert caught.value.detail == detail
    assert list(tmp_path.iterdir()) == [tmp_path / name]


def test_an_intact_jpeg_of_the_same_kind_decodes(tmp_path: Path) -> None:
    (tmp_path / "fine.jpg").write_bytes(encoded(".jpg"))
    [written] = process_image(
        tmp_path / "fine.jpg", tmp_path / "out.png", parse_operations(["resize=0.5"])
    )
    assert cv2.imread(str(written)).shape == (48, 64, 3)
