"""Read an image's format, stored size and EXIF orientation from its header, without decoding.

Formats are recognized by their first bytes, never by file name. JPEG, PNG, WebP, TIFF, BMP,
GIF (its first frame), AVIF and HEIC are decoded; other image formats OpenCV could decode
(JPEG 2000, PNM, HDR...) are refused, which keeps the decoders exposed to clients to these.

Orientation is read where OpenCV applies it, so that ``Header.size`` is the size OpenCV will
decode: the first EXIF block in a JPEG (any APP1 before the first scan), the first eXIf chunk
in a PNG (before or after the image data), the EXIF chunk of an extended WebP, and the TIFF
tag in a TIFF's first directory. Only a SHORT orientation of 1 to 8 counts, as in OpenCV.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from pipeline.errors import ImageDecodeError, UnsupportedFormat
from pipeline.exif import (
    IMAGE_LENGTH,
    IMAGE_WIDTH,
    ORIENTATION,
    SHORT,
    Damaged,
    ReadAt,
    exif_orientation,
    read_ifd0,
)
from pipeline.isobmff import avif_size, brand, heif_size
from pipeline.operation import Size

FORMAT_NAMES = {
    ".jpg": "JPEG",
    ".png": "PNG",
    ".webp": "WebP",
    ".tif": "TIFF",
    ".bmp": "BMP",
    ".gif": "GIF",
    ".avif": "AVIF",
    ".heic": "HEIC",
}
_SUPPORTED = "JPEG, PNG, WebP, TIFF, BMP, GIF, AVIF and HEIC"
_OTHER_FORMATS = (
    (b"\x00\x00\x00\x0cjP  ", 0, "JPEG 2000"),
    (b"\xff\x4f\xff\x51", 0, "JPEG 2000"),
    (b"\xff\x0a", 0, "JPEG XL"),
    (b"\x00\x00\x00\x0cJXL ", 0, "JPEG XL"),
    (b"v/1\x01", 0, "OpenEXR"),
    (b"#?RADIANCE", 0, "Radiance HDR"),
    (b"#?RGBE", 0, "Radiance HDR"),
    (b"\x59\xa6\x6a\x95", 0, "Sun raster"),
    (b"8BPS", 0, "Photoshop"),
    (b"qoif", 0, "QOI"),
)
_JPEG_SOF = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC}
_MAX_PIECES = 100_000
"""How many JPEG segments (or fill bytes), PNG chunks or WebP chunks a header walk reads."""


@dataclass(frozen=True)
class Header:
    """The format (canonical extension), stored size and EXIF orientation of an image."""

    format: str
    width: int
    height: int
    orientation: int = 1
    scan_start: int = 0
    """For a JPEG, the offset of its first scan (SOS marker)."""
    components: int = 3
    """For a JPEG, its colour components: 1 gray, 3 YCbCr or RGB, 4 CMYK or YCCK."""

    @property
    def size(self) -> Size:
        """Return (width, height) as decoded, after the EXIF orientation."""
        return (self.height, self.width) if self.orientation >= 5 else (self.width, self.height)


def read_header(read_at: ReadAt, name: str) -> Header:
    """Read an image's header, or raise ImageDecodeError or UnsupportedFormat."""
    head = read_at(0, 64)
    if not head:
        raise ImageDecodeError(f"{name} is empty")
    image_format = sniff(head)
    if image_format is None:
        other = next(
            (kind for magic, at, kind in _OTHER_FORMATS if head[at:].startswith(magic)), None
        )
        if other is not None:
            article = "an" if other[0] in "AEIOU" else "a"
            raise UnsupportedFormat(
                f"{name} is {article} {other} image; the supported formats are {_SUPPORTED}"
            )
        raise ImageDecodeError(f"{name} is not an image in a supported format ({_SUPPORTED})")
    try:
        header = _PARSERS[image_format](read_at)
    except (Damaged, struct.error, KeyError):
        raise ImageDecodeError(
            f"{name} is not a valid {FORMAT_NAMES[image_format]} image: its header is damaged"
            " or cut short"
        ) from None
    if header.width < 1 or header.height < 1:
        raise ImageDecodeError(f"{name} claims an empty size of {header.width}x{header.height}")
    return header


def sniff(head: bytes) -> str | None:
    """Return the canonical extension of a supported format from an image's first bytes."""
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return ".webp"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return ".tif"
    if head.startswith(b"BM"):
        return ".bmp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif"
    return brand(head)


def _jpeg(read_at: ReadAt) -> Header:
    position, size, orientation, components = 2, None, None, 3
    for _ in range(_MAX_PIECES):
        marker = read_at(position, 4)
        if len(marker) < 2 or marker[0] != 0xFF:
            raise Damaged("expected a marker")
        kind = marker[1]
        if kind == 0xFF:
            position += 1
            continue
        if kind == 0x01 or 0xD0 <= kind <= 0xD8:
            position += 2
            continue
        (length,) = struct.unpack_from(">H", marker, 2)
        if kind == 0xD9 or length < 2:
            raise Damaged("no image data")
        if kind == 0xDA:
            if size is None:
                raise Damaged("a scan before the frame header")
            return Header(".jpg", *size, orientation or 1, position, components)
        if kind in _JPEG_SOF and size is None:
            height, width, components = struct.unpack(">HHB", read_at(position + 5, 5))
            size = (width, height)
        elif kind == 0xE1 and orientation is None:
            segment = read_at(position + 4, length - 2)
            if segment.startswith(b"Exif\x00\x00"):
                orientation = exif_orientation(segment[6:])
        position += 2 + length
    raise Damaged("too many segments before the first scan")


def _png(read_at: ReadAt) -> Header:
    if read_at(12, 4) != b"IHDR":
        raise Damaged("IHDR is not the first chunk")
    width, height = struct.unpack(">II", read_at(16, 8))
    position, orientation = 8, 1
    for _ in range(_MAX_PIECES):
        piece = read_at(position, 8)
        if len(piece) < 8:
            break  # cut short: decoding will say so; the size is known
        length, kind = struct.unpack(">I4s", piece)
        if kind == b"eXIf":
            orientation = exif_orientation(read_at(position + 8, length))
            break
        if kind == b"IEND":
            break
        position += 12 + length
    return Header(".png", width, height, orientation)


def _webp(read_at: ReadAt) -> Header:
    (kind,) = struct.unpack("4s", read_at(12, 4))
    data = read_at(20, 10)
    if kind == b"VP8 ":
        if data[3:6] != b"\x9d\x01\x2a":
            raise Damaged("no VP8 start code")
        width, height = struct.unpack_from("<HH", data, 6)
        return Header(".webp", width & 0x3FFF, height & 0x3FFF)
    if kind == b"VP8L":
        if data[0] != 0x2F:
            raise Damaged("no VP8L signature")
        (bits,) = struct.unpack_from("<I", data, 1)
        return Header(".webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if kind != b"VP8X":
        raise Damaged("unknown first chunk")
    width = int.from_bytes(data[4:7], "little") + 1
    height = int.from_bytes(data[7:10], "little") + 1
    (riff_size,) = struct.unpack("<I", read_at(4, 4))
    position, orientation = 12, 1
    for _ in range(_MAX_PIECES):
        piece = read_at(position, 8)
        if len(piece) < 8 or position >= riff_size + 8:
            break
        chunk, length = struct.unpack("<4sI", piece)
        if chunk == b"EXIF":
            block = read_at(position + 8, length)
            orientation = exif_orientation(
                block[6:] if block.startswith(b"Exif\x00\x00") else block
            )
            break
        position += 8 + length + (length & 1)
    return Header(".webp", width, height, orientation)


def _tiff(read_at: ReadAt) -> Header:
    tags = read_ifd0(read_at)
    (_, width), (_, height) = tags[IMAGE_WIDTH], tags[IMAGE_LENGTH]
    kind, orientation = tags.get(ORIENTATION, (SHORT, 1))
    valid = kind == SHORT and 1 <= orientation <= 8
    return Header(".tif", width, height, orientation if valid else 1)


def _bmp(read_at: ReadAt) -> Header:
    (info_size,) = struct.unpack("<I", read_at(14, 4))
    if info_size == 12:
        width, height = struct.unpack("<HH", read_at(18, 4))
    else:
        width, height = struct.unpack("<ii", read_at(18, 8))
    return Header(".bmp", width, abs(height))


def _gif(read_at: ReadAt) -> Header:
    width, height = struct.unpack("<HH", read_at(6, 4))
    return Header(".gif", width, height)


def _avif(read_at: ReadAt) -> Header:
    (width, height), orientation = avif_size(read_at)
    return Header(".avif", width, height, orientation)


def _heic(read_at: ReadAt) -> Header:
    return Header(".heic", *heif_size(read_at))


_PARSERS = {
    ".jpg": _jpeg,
    ".png": _png,
    ".webp": _webp,
    ".tif": _tiff,
    ".bmp": _bmp,
    ".gif": _gif,
    ".avif": _avif,
    ".heic": _heic,
}
