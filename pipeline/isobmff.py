"""Headers and decoding of the ISO media file formats: AVIF (OpenCV's libavif) and HEIC.

AVIF's size is its largest ``ispe`` box (a grid's tiles have their own, smaller ones),
turned by ``irot``, which OpenCV's decoder does not apply: the decoder turns the image as an
EXIF orientation would (``imir`` mirroring is not applied). Its ICC profile is its ``colr``
box of type ``prof``. HEIC's size comes
from libheif (pillow-heif), which reads only the file's boxes: HEVC pads coded images to
whole blocks, so ``ispe`` can be larger than the picture its ``clap`` box cuts out. libheif
applies HEIF's own rotation and mirroring, and only the primary image is decoded.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from pipeline.embedded import Embedded
from pipeline.errors import ImageDecodeError
from pipeline.exif import Damaged, ReadAt
from pipeline.operation import Image, Size

AVIF_BRANDS = (b"avif", b"avis")
HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
_BOXES_READ = 1 << 20
"""How much of an AVIF file is searched for its boxes: they precede the image data."""


def brand(head: bytes) -> str | None:
    """Return ".avif" or ".heic" for an ISO media file's ftyp box, else None."""
    if head[4:8] != b"ftyp":
        return None
    (size,) = struct.unpack_from(">I", head, 0)
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, min(size, len(head)) - 3, 4)]
    if any(b in AVIF_BRANDS for b in brands):
        return ".avif"
    return ".heic" if any(b in HEIF_BRANDS for b in brands) else None


def _boxes(data: bytes, kind: bytes) -> list[int]:
    """Return the offsets of every box of a kind (the offset of its type) in data."""
    found, start = [], data.find(kind)
    while start >= 4:
        found.append(start)
        start = data.find(kind, start + 4)
    return found


def avif_size(read_at: ReadAt) -> tuple[Size, int]:
    """Return an AVIF's stored (width, height) and the EXIF-like orientation of its irot."""
    data = read_at(0, _BOXES_READ)
    sizes = [struct.unpack_from(">II", data, at + 8) for at in _boxes(data, b"ispe")]
    if not sizes:
        raise Damaged("no ispe box")
    width, height = max(sizes, key=lambda size: size[0] * size[1])
    turns = [data[at + 4] & 3 for at in _boxes(data, b"irot") if at + 4 < len(data)]
    quarter = turns[0] if turns else 0
    return (width, height), {1: 8, 2: 3, 3: 6}.get(quarter, 1)


def avif_profile(data: bytes) -> bytes | None:
    """Return the ICC profile in an AVIF's colr box, if it has one."""
    for at in _boxes(data[:_BOXES_READ], b"colr"):
        if data[at + 4 : at + 8] == b"prof":
            (size,) = struct.unpack_from(">I", data, at - 4)
            return data[at + 8 : at - 4 + size]
    return None


def _heif_file(data: bytes, name: str) -> Any:
    import pillow_heif

    try:
        return pillow_heif.open_heif(data, convert_hdr_to_8bit=False)
    except (ValueError, RuntimeError) as error:
        raise ImageDecodeError(
            f"{name} cannot be decoded: its HEIC data is damaged ({error})"
        ) from None


def heif_size(read_at: ReadAt) -> Size:
    """Return a HEIC's (width, height) as decoded, reading its boxes with libheif."""
    try:
        width, height = _heif_file(read_at(0, 1 << 31), "").size
    except ImageDecodeError as error:
        raise Damaged(error.detail) from None
    return width, height


def decode_heif(data: bytes, name: str) -> tuple[Image, Embedded]:
    """Decode a HEIC's primary image to BGR or BGRA (16-bit above 8 bits), with its profile."""
    heif = _heif_file(data, name)
    try:
        pixels = np.asarray(heif)
    except (ValueError, RuntimeError) as error:
        raise ImageDecodeError(
            f"{name} cannot be decoded: its HEIC data is damaged ({error})"
        ) from None
    image = np.ascontiguousarray(pixels[..., [2, 1, 0, 3][: pixels.shape[2]]])
    exif = heif.info.get("exif")
    if exif is not None and exif.startswith(b"Exif\x00\x00"):
        exif = exif[6:]
    return image, Embedded(heif.info.get("icc_profile") or None, exif or None, None)
