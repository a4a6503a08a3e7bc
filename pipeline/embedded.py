"""What an image carries besides pixels: its ICC profile, EXIF block and XMP packet.

A JPEG's are read here from its segments before the first scan (the header walk already
proved them well formed): EXIF and XMP in APP1, the ICC profile in APP2 chunks joined in
sequence order, and Adobe's APP14, whose presence means CMYK samples are stored inverted.
PNG and WebP give theirs through OpenCV's imdecodeWithMetadata (eXIf, iCCP, iTXt XMP; EXIF,
ICCP, XMP chunks); a TIFF's profile is read here from its first directory (tag 34675).
EXIF blocks are TIFF-structured, without the "Exif\\0\\0" prefix.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.exif import ENTRY, UNDEFINED, ifd0_entries

_EXIF, _XMP, _ICC = b"Exif\x00\x00", b"http://ns.adobe.com/xap/1.0/\x00", b"ICC_PROFILE\x00"
_STANDALONE = {0x01, *range(0xD0, 0xD9)}
_ICC_TAG = 34675


@dataclass(frozen=True)
class Embedded:
    """An image's ICC profile, EXIF block and XMP packet (None when absent)."""

    profile: bytes | None = None
    exif: bytes | None = None
    xmp: bytes | None = None
    adobe: bool = False
    """A JPEG with Adobe's APP14 segment: its CMYK samples are inverted."""


def jpeg_embedded(data: bytes, scan_start: int) -> Embedded:
    """Return what a JPEG's segments before its first scan carry."""
    position, exif, xmp, adobe = 2, None, None, False
    chunks: dict[int, bytes] = {}
    while position < scan_start and data[position] == 0xFF:
        kind = data[position + 1]
        if kind == 0xFF or kind in _STANDALONE:
            position += 1 if kind == 0xFF else 2
            continue
        (length,) = struct.unpack_from(">H", data, position + 2)
        body = data[position + 4 : position + 2 + length]
        if kind == 0xE1 and exif is None and body.startswith(_EXIF):
            exif = body[len(_EXIF) :]
        elif kind == 0xE1 and xmp is None and body.startswith(_XMP):
            xmp = body[len(_XMP) :]
        elif kind == 0xE2 and body.startswith(_ICC) and len(body) > len(_ICC) + 2:
            chunks.setdefault(body[len(_ICC)], body[len(_ICC) + 2 :])
        elif kind == 0xEE and body.startswith(b"Adobe"):
            adobe = True
        position += 2 + length
    profile = b"".join(chunks[n] for n in sorted(chunks)) if chunks else None
    return Embedded(profile, exif, xmp, adobe)


def tiff_profile(data: bytes) -> bytes | None:
    """Return the ICC profile of a classic TIFF's first image (tag 34675), if it has one."""
    try:
        order, _, entries = ifd0_entries(data)
    except (KeyError, ValueError, struct.error):
        return None
    for tag, kind, values, field, _ in entries:
        if tag == _ICC_TAG and kind in (UNDEFINED, 1) and values > 4:
            (at,) = struct.unpack(order + "I", field)
            return data[at : at + values] or None
    return None


def with_tiff_profile(data: bytes, profile: bytes) -> bytes:
    """Return a classic TIFF with an ICC profile tag added to its first directory.

    The profile and a copy of IFD0 with the new entry (in tag order) are appended and the
    header points at the copy, so every offset already in the file stays valid.
    """
    order, offset, entries = ifd0_entries(data)
    (following,) = struct.unpack_from(order + "I", data, offset + 2 + len(entries) * ENTRY.size)
    grown = bytearray(data) + b"\0" * (len(data) & 1)
    at_profile = len(grown)
    grown += profile + b"\0" * (len(profile) & 1)
    rows = [
        struct.pack(order + ENTRY.format, tag, kind, values, field)
        for tag, kind, values, field, _ in entries
        if tag != _ICC_TAG
    ]
    icc = struct.pack(order + "HHII", _ICC_TAG, UNDEFINED, len(profile), at_profile)
    tags = [tag for tag, *_ in entries if tag != _ICC_TAG]
    rows.insert(sum(tag < _ICC_TAG for tag in tags), icc)
    at_ifd = len(grown)
    grown += struct.pack(order + "H", len(rows)) + b"".join(rows)
    grown += struct.pack(order + "I", following)
    struct.pack_into(order + "I", grown, 4, at_ifd)
    return bytes(grown)


def opencv_embedded(kinds: Sequence[int], blocks: Sequence[np.ndarray]) -> Embedded:
    """Return what imdecodeWithMetadata found, from its metadata types and blocks."""
    found = {int(kind): block.tobytes() for kind, block in zip(kinds, blocks, strict=True)}
    exif = found.get(cv2.IMAGE_METADATA_EXIF)
    if exif is not None and exif.startswith(_EXIF):
        exif = exif[len(_EXIF) :]
    return Embedded(found.get(cv2.IMAGE_METADATA_ICCP), exif, found.get(cv2.IMAGE_METADATA_XMP))


def embedding(
    profile: bytes | None, exif: bytes | None, xmp: bytes | None
) -> tuple[list[int], list[np.ndarray]]:
    """Return imencodeWithMetadata's types and blocks for what an output should carry."""
    kinds, blocks = [], []
    for kind, block in (
        (cv2.IMAGE_METADATA_ICCP, profile),
        (cv2.IMAGE_METADATA_EXIF, exif),
        (cv2.IMAGE_METADATA_XMP, xmp),
    ):
        if block:
            kinds.append(kind)
            blocks.append(np.frombuffer(block, np.uint8))
    return kinds, blocks
