"""Say what is wrong with a damaged PNG or WebP, in words a client can act on.

libpng only warns about a bad CRC in an ancillary chunk and drops the chunk (an ICC profile
or EXIF block would vanish without a word), so every PNG chunk but IDAT is checked before
decoding: they are few and small. IDAT's CRCs and its zlib stream are libpng's errors
anyway; they, and a WebP that libwebp refuses, are looked into only once decoding has
failed, to name what is wrong.
"""

from __future__ import annotations

import struct
import zlib

_PRINTABLE = set(range(0x41, 0x5B)) | set(range(0x61, 0x7B))


def _chunk_name(kind: bytes) -> str:
    return f"its {kind.decode()} chunk" if set(kind) <= _PRINTABLE else "a chunk"


def png_chunk_problem(data: bytes, *, idat: bool = False) -> str | None:
    """Return what is wrong with a PNG's chunks (a CRC, a cut), or None; IDAT's CRC if idat."""
    position = 8
    while True:
        if position + 8 > len(data):
            return "it is cut short before its IEND chunk"
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if end > len(data):
            return f"it is cut short inside {_chunk_name(kind)}"
        checked = data[position + 4 : end - 4]
        if (idat or kind != b"IDAT") and zlib.crc32(checked) != int.from_bytes(
            data[end - 4 : end], "big"
        ):
            return f"{_chunk_name(kind)} fails its CRC check"
        if kind == b"IEND":
            return None
        position = end


def png_problem(data: bytes) -> str:
    """Return what is wrong with a PNG that libpng refused."""
    problem = png_chunk_problem(data, idat=True)
    if problem is not None:
        return problem
    position, compressed = 8, []
    while position + 8 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        if kind == b"IDAT":
            compressed.append(data[position + 8 : position + 8 + length])
        position += 12 + length
    try:
        zlib.decompress(b"".join(compressed))
    except zlib.error as error:
        return f"its compressed image data is broken ({error})"
    return "its image data does not match its header"


def webp_problem(data: bytes) -> str:
    """Return what is wrong with a WebP that libwebp refused."""
    (riff_size,) = struct.unpack_from("<I", data, 4)
    if len(data) < riff_size + 8:
        return f"it is cut short: it has {len(data)} of the {riff_size + 8} bytes its header gives"
    return "its compressed image data is broken"
