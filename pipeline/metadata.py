"""What an output keeps of its input's EXIF and XMP: encode.metadata.

    strip      (the default) nothing: orientation has been applied, GPS and the rest go
    copyright  a new EXIF block of only IFD0's Artist and Copyright fields, no XMP
    keep       the EXIF block and XMP packet, with the EXIF orientation set to 1, since the
               pixels are upright already

Blocks are TIFF-structured (see pipeline.exif). A block that cannot be read is dropped
rather than carried half understood.
"""

from __future__ import annotations

import struct

from pipeline.embedded import Embedded
from pipeline.exif import ENTRY, ORIENTATION, SHORT, ifd0_entries

METADATA_MODES = ("strip", "copyright", "keep")
ARTIST, COPYRIGHT = 0x013B, 0x8298
_ASCII = 2


def carried(embedded: Embedded, mode: str, profile: bytes | None) -> Embedded:
    """Return what an output carries: the given profile, and EXIF and XMP as mode says."""
    if mode == "strip" or (embedded.exif is None and embedded.xmp is None):
        return Embedded(profile=profile)
    if mode == "copyright":
        return Embedded(profile=profile, exif=_copyright_only(embedded.exif))
    exif = _upright(embedded.exif) if embedded.exif is not None else None
    return Embedded(profile=profile, exif=exif, xmp=embedded.xmp)


def _upright(block: bytes) -> bytes | None:
    """Return an EXIF block with its orientation set to 1, or None if it cannot be read."""
    try:
        order, _, entries = ifd0_entries(block)
    except (KeyError, ValueError, struct.error):
        return None
    patched = bytearray(block)
    for tag, kind, values, _, at in entries:
        if tag == ORIENTATION and kind == SHORT and values == 1:
            struct.pack_into(order + "H", patched, at + 8, 1)
    return bytes(patched)


def _copyright_only(block: bytes | None) -> bytes | None:
    """Return a new little-endian EXIF block of only IFD0's Artist and Copyright, or None."""
    if block is None:
        return None
    try:
        order, _, entries = ifd0_entries(block)
        texts = []
        for tag, kind, values, field, _ in entries:
            if tag in (ARTIST, COPYRIGHT) and kind == _ASCII:
                if values <= 4:
                    texts.append((tag, field[:values]))
                else:
                    (at,) = struct.unpack(order + "I", field)
                    texts.append((tag, block[at : at + values]))
    except (KeyError, ValueError, struct.error):
        return None
    if not texts:
        return None
    head = 8 + 2 + len(texts) * ENTRY.size + 4
    table, data = b"", b""
    for tag, text in sorted(texts):
        if len(text) <= 4:
            field = text.ljust(4, b"\0")
        else:
            field = struct.pack("<I", head + len(data))
            data += text + b"\0" * (len(text) & 1)
        table += struct.pack("<" + ENTRY.format, tag, _ASCII, len(text), field)
    return b"II*\0" + struct.pack("<IH", 8, len(texts)) + table + b"\0\0\0\0" + data
