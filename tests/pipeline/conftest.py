"""Fixtures for the pipeline's tests: small deterministic images and files crafted from them."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture
def image() -> np.ndarray:
    """Return a deterministic 37x23 BGR image of noise: odd sides, no two pixels alike."""
    return np.random.default_rng(7).integers(0, 256, (23, 37, 3), dtype=np.uint8)


@pytest.fixture
def marked() -> np.ndarray:
    """Return a gray 60x40 image with a red block in its top-left corner."""
    picture = np.full((40, 60, 3), 128, np.uint8)
    picture[:10, :20] = (0, 0, 255)
    return picture


@pytest.fixture
def photo(seed_images: list[Path]) -> Path:
    """Return a real 1024x754 photo: the seed's, or the repository's own sample."""
    return seed_images[0]


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Return a function that encodes an image with OpenCV into a file in tmp_path."""

    def write(name: str, picture: np.ndarray, params: tuple[int, ...] = ()) -> Path:
        ok, encoded = cv2.imencode(Path(name).suffix, picture, list(params))
        assert ok
        path = tmp_path / name
        path.write_bytes(encoded.tobytes())
        return path

    return write


def tiff_block(orientation: int, order: str = ">") -> bytes:
    """Return a TIFF-structured EXIF block whose IFD0 holds only an orientation."""
    mark = b"MM" if order == ">" else b"II"
    entry = struct.pack(order + "HHIHH", 0x0112, 3, 1, orientation, 0)
    return mark + struct.pack(order + "HIH", 42, 8, 1) + entry + struct.pack(order + "I", 0)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """Return a PNG chunk with its length and CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


class Craft:
    """Build image files by hand: EXIF orientations, false sizes, cut-short data."""

    @staticmethod
    def jpeg_oriented(picture: np.ndarray, orientation: int) -> bytes:
        """Return a JPEG of picture with an EXIF APP1 segment holding an orientation."""
        jpeg = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        block = b"Exif\x00\x00" + tiff_block(orientation, "<")
        return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(block) + 2) + block + jpeg[2:]

    @staticmethod
    def png_oriented(picture: np.ndarray, orientation: int) -> bytes:
        """Return a PNG of picture with an eXIf chunk after its IHDR."""
        png = cv2.imencode(".png", picture)[1].tobytes()
        return png[:33] + png_chunk(b"eXIf", tiff_block(orientation)) + png[33:]

    @staticmethod
    def webp_oriented(picture: np.ndarray, orientation: int) -> bytes:
        """Return an extended (VP8X) WebP of picture with an EXIF chunk after the image."""
        lossy = cv2.imencode(".webp", picture, [cv2.IMWRITE_WEBP_QUALITY, 90])[1].tobytes()
        rows, cols = picture.shape[:2]
        header = bytes([0x08, 0, 0, 0]) + (cols - 1).to_bytes(3, "little")
        header += (rows - 1).to_bytes(3, "little")
        exif = tiff_block(orientation)
        body = b"WEBP" + b"VP8X" + struct.pack("<I", 10) + header + lossy[12:]
        body += b"EXIF" + struct.pack("<I", len(exif)) + exif + b"\x00" * (len(exif) % 2)
        return b"RIFF" + struct.pack("<I", len(body)) + body

    @staticmethod
    def tiff_oriented(picture: np.ndarray, orientation: int) -> bytes:
        """Return an uncompressed RGB TIFF of picture whose IFD0 has an orientation tag."""
        rows, cols = picture.shape[:2]
        pixels = np.ascontiguousarray(picture[:, :, ::-1]).tobytes()
        count = 10
        bits_at = 8 + 2 + count * 12 + 4
        data_at = bits_at + 6
        entries = [
            (256, 4, 1, cols), (257, 4, 1, rows), (258, 3, 3, bits_at), (259, 3, 1, 1),
            (262, 3, 1, 2), (273, 4, 1, data_at), (274, 3, 1, orientation), (277, 3, 1, 3),
            (278, 4, 1, rows), (279, 4, 1, len(pixels)),
        ]  # fmt: skip
        ifd = struct.pack("<H", count)
        for tag, kind, values, value in entries:
            field = (
                struct.pack("<HH", value, 0)
                if kind == 3 and values == 1
                else struct.pack("<I", value)
            )
            ifd += struct.pack("<HHI", tag, kind, values) + field
        ifd += struct.pack("<I", 0)
        return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<HHH", 8, 8, 8) + pixels

    @staticmethod
    def png_claiming(width: int, height: int) -> bytes:
        """Return a tiny PNG whose IHDR claims width x height RGB pixels."""
        ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        idat = zlib.compress(b"\x00" * 64)
        return (
            b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b"")
        )  # fmt: skip

    @staticmethod
    def jpeg_claiming(width: int, height: int) -> bytes:
        """Return a small real JPEG whose frame header (SOF) is rewritten to width x height."""
        jpeg = bytearray(cv2.imencode(".jpg", np.zeros((16, 16, 3), np.uint8))[1].tobytes())
        sof = jpeg.index(b"\xff\xc0")
        jpeg[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
        return bytes(jpeg)


@pytest.fixture
def craft() -> Craft:
    """Return the helpers that build image files by hand."""
    return Craft()
