"""Read the first image directory (IFD0) of TIFF-structured data: TIFF files and EXIF blocks."""

from __future__ import annotations

import struct
from collections.abc import Callable

ReadAt = Callable[[int, int], bytes]
"""Read up to n bytes at an offset: read_at(offset, n)."""

SHORT, LONG, LONG8, UNDEFINED = 3, 4, 16, 7
ENTRY = struct.Struct("HHI4s")
"""A classic TIFF directory entry: tag, type, count, and the value or its offset."""
IMAGE_WIDTH, IMAGE_LENGTH, ORIENTATION = 256, 257, 274
_MAX_ENTRIES = 4096


class Damaged(ValueError):
    """Raised when image data does not have the structure its format requires."""


def read_ifd0(read_at: ReadAt) -> dict[int, tuple[int, int]]:
    """Return IFD0's single-valued integer tags as {tag: (type, value)}.

    Handles classic TIFF and BigTIFF in either byte order.
    """
    head = read_at(0, 16)
    order = {b"II": "<", b"MM": ">"}.get(head[:2])
    if order is None:
        raise Damaged("unknown byte order")
    (magic,) = struct.unpack_from(order + "H", head, 2)
    if magic == 42:
        (offset,) = struct.unpack_from(order + "I", head, 4)
        count_format, entry_format, entry_size = "H", "HHI4s", 12
    elif magic == 43:
        (offset,) = struct.unpack_from(order + "Q", head, 8)
        count_format, entry_format, entry_size = "Q", "HHQ8s", 20
    else:
        raise Damaged("not TIFF-structured")
    count_size = struct.calcsize(count_format)
    (count,) = struct.unpack(order + count_format, read_at(offset, count_size))
    if count > _MAX_ENTRIES:
        raise Damaged("too many directory entries")
    entries = read_at(offset + count_size, count * entry_size)
    tags: dict[int, tuple[int, int]] = {}
    for index in range(count):
        tag, kind, values, field = struct.unpack_from(
            order + entry_format, entries, index * entry_size
        )
        if values == 1 and kind in (SHORT, LONG, LONG8):
            value_format = {SHORT: "H", LONG: "I", LONG8: "Q"}[kind]
            tags.setdefault(tag, (kind, struct.unpack_from(order + value_format, field)[0]))
    return tags


def ifd0_entries(block: bytes) -> tuple[str, int, list[tuple[int, int, int, bytes, int]]]:
    """Return a classic TIFF block's byte order, IFD0's offset and IFD0's raw entries.

    Each entry is (tag, type, count, value or offset field, offset of the entry). Raises
    KeyError, ValueError or struct.error when the block is not classic TIFF.
    """
    order = {b"II": "<", b"MM": ">"}[block[:2]]
    (magic, offset) = struct.unpack_from(order + "HI", block, 2)
    if magic != 42:
        raise ValueError("not a classic TIFF structure")
    (count,) = struct.unpack_from(order + "H", block, offset)
    if count > _MAX_ENTRIES:
        raise ValueError("too many directory entries")
    entries = []
    for index in range(count):
        at = offset + 2 + index * ENTRY.size
        tag, kind, values, field = struct.unpack_from(order + ENTRY.format, block, at)
        entries.append((tag, kind, values, field, at))
    return order, offset, entries


def exif_orientation(block: bytes) -> int:
    """Return the EXIF orientation (1 to 8) in a TIFF-structured block, or 1 if it has none."""
    try:
        kind, value = read_ifd0(lambda offset, n: block[offset : offset + n]).get(
            ORIENTATION, (0, 1)
        )
    except (Damaged, struct.error):
        return 1
    return value if kind == SHORT and 1 <= value <= 8 else 1
