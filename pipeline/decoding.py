"""Read an input's bytes once, check them against the limits, then decode.

Reading checks, before any pixel is allocated: the file's size against max_input_bytes (from
stat, before reading), the header's dimensions against max_pixels (a small file that claims
20000x20000 pixels fails in microseconds), and for a JPEG that an end-of-image marker follows
the first scan (a cut-short JPEG is refused here with a clear sentence; OpenCV 5 also refuses
it, OpenCV 4 only warned). OPENCV_IO_MAX_IMAGE_PIXELS guards again inside OpenCV.

Decoding keeps what the file holds: 8- or 16-bit samples; gray as one channel, gray and
alpha as two (a PNG of that colour type), colour as BGR and colour with alpha as BGRA. An
alpha channel in which every pixel is opaque is dropped, as libvips does. A GIF gives its
first frame only (with its transparent index as alpha), an AVIF or HEIC its primary image.
BMP is always decoded as BGR (the fourth byte of a 32-bit BMP is seldom alpha). EXIF
orientation is applied. JPEGs can be decoded at 1/2, 1/4 or 1/8 size (DCT scaling:
"shrink-on-load"), 3 to 6 times faster than in full; see ``decode_reduced``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np
import simplejpeg

from pipeline.alpha import without_opaque_alpha
from pipeline.colour import cmyk_to_bgr
from pipeline.damage import png_chunk_problem, png_problem, webp_problem
from pipeline.embedded import Embedded, jpeg_embedded, opencv_embedded, tiff_profile
from pipeline.errors import ImageDecodeError, LimitExceeded, UnsupportedFormat
from pipeline.headers import FORMAT_NAMES, Header, read_header
from pipeline.inputs import open_input_file, unreadable
from pipeline.isobmff import avif_profile, decode_heif
from pipeline.limits import Limits, check_input_bytes, check_pixels, megapixels
from pipeline.operation import Image, Size

_JPEG_COLORSPACES = {1: "GRAY", 4: "CMYK"}
_PNG_GRAY_ALPHA = 4
"""The PNG colour type of gray and alpha (IHDR's byte 25 of the file)."""


@dataclass(frozen=True)
class Source:
    """An input's name, bytes and header, checked against the limits but not decoded."""

    name: str
    data: bytes
    header: Header


@dataclass(frozen=True)
class Decoded:
    """A decoded image and what its file carries besides pixels."""

    image: Image
    embedded: Embedded


def open_input(path: str | os.PathLike[str], limits: Limits) -> Source:
    """Read an input file once and check its size, header and pixel count."""
    name, file = open_input_file(path, limits)
    with file:
        try:
            data = file.read(limits.max_input_bytes + 1)
        except OSError as error:
            raise unreadable(name, error) from None
    check_input_bytes(name, len(data), limits)
    header = read_header(lambda offset, n: data[offset : offset + n], name)
    check_pixels(name, *header.size, limits)
    if header.format == ".jpg" and data.rfind(b"\xff\xd9") < header.scan_start:
        raise ImageDecodeError(f"{name} is truncated: its JPEG data stops before the end marker")
    problem = png_chunk_problem(data) if header.format == ".png" else None
    if problem is not None:
        raise ImageDecodeError(f"{name} cannot be decoded: its PNG data is damaged ({problem})")
    return Source(name, data, header)


def reduction_for(size: Size, target: Size) -> int:
    """Return the largest JPEG reduction (8, 4, 2 or 1) that decodes to at least target.

    libjpeg makes ceil(side / scale) pixels of a side, so this is the largest scale with
    ceil(side / scale) >= target on both sides: a resize by 0.5 of an odd side still
    qualifies for 1/2, as round(side * 0.5) is then ceil(side / 2).
    """
    for scale in (8, 4, 2):
        if -(-size[0] // scale) >= target[0] and -(-size[1] // scale) >= target[1]:
            return scale
    return 1


def decode_reduced(source: Source, target: Size) -> Decoded | None:
    """Decode a JPEG at 1/2, 1/4 or 1/8 size for a resize to target, or return None.

    When a side is not a multiple of the scale, libjpeg's last row or column covers fewer
    source pixels than the others. It is dropped when it covers less than half and the
    image stays at least the target, so that the geometry drifts by at most half a decoded
    pixel toward the far edges (keeping it, up to a whole one). Compared with a full decode
    and INTER_AREA, measured on the seed photos: sides that are multiples of the scale give
    a mean difference under 0.6 levels (of 255) at 1/2 and 1/4 and up to 2.6 at 1/8 (a
    two-step box filter keeps slightly different detail); other sides add the drift, up to
    a mean of 4.5 on these detailed 1 MP photos and about 2 at 12 and 24 MP.
    """
    size = source.header.size
    reduction = reduction_for(size, target) if source.header.format == ".jpg" else 1
    if reduction == 1:
        return None
    decoded = decode(source, reduction)
    image = decoded.image
    if image.shape[:2] != (-(-size[1] // reduction), -(-size[0] // reduction)):
        return None  # not what libjpeg makes: let the caller decode in full
    rows, cols = round(size[1] / reduction), round(size[0] / reduction)
    return replace(decoded, image=image[: max(rows, target[1]), : max(cols, target[0])])


def decode_jpeg(source: Source, reduction: int = 1) -> Decoded:
    """Decode a JPEG strictly with libjpeg-turbo: a warning about its data is an error.

    CMYK (inverted when Adobe's APP14 says so) is converted to BGR here, through its profile
    if it has one; the profile is then spent.
    """
    header = source.header
    colorspace = _JPEG_COLORSPACES.get(header.components, "BGR")
    smallest = {}
    if reduction > 1:
        smallest = {
            "min_width": -(-header.width // reduction),
            "min_height": -(-header.height // reduction),
            "min_factor": reduction,
        }
    try:
        image = simplejpeg.decode_jpeg(source.data, colorspace, strict=True, **smallest)
    except ValueError as error:
        raise ImageDecodeError(
            f"{source.name} cannot be decoded: its JPEG data is damaged ({error})"
        ) from None
    embedded = jpeg_embedded(source.data, header.scan_start)
    if colorspace == "GRAY":
        image = image[..., 0]
    elif colorspace == "CMYK":
        image = cmyk_to_bgr(image, embedded.profile, inverted=embedded.adobe)
        embedded = replace(embedded, profile=None)
    return Decoded(orient(image, header.orientation), embedded)


def orient(image: Image, orientation: int) -> Image:
    """Turn and mirror an image as its EXIF orientation (1 to 8) says, to be shown upright."""
    if orientation in (5, 7):
        image = cv2.transpose(image)
    turn = {3: cv2.ROTATE_180, 6: cv2.ROTATE_90_CLOCKWISE, 7: cv2.ROTATE_180}.get(orientation)
    if orientation == 8:
        turn = cv2.ROTATE_90_COUNTERCLOCKWISE
    if turn is not None:
        image = cv2.rotate(image, turn)
    if orientation in (2, 4):
        image = cv2.flip(image, 1 if orientation == 2 else 0)
    return image


def _as_decoded(image: Image, source: Source) -> Image:
    """Check the samples and channels OpenCV gave for a PNG, WebP or TIFF, and orient it."""
    if image.dtype not in (np.uint8, np.uint16):
        raise UnsupportedFormat(
            f"{source.name} has {image.dtype} samples; only 8- and 16-bit samples are supported"
        )
    if source.header.format == ".png" and source.data[25:26] == bytes([_PNG_GRAY_ALPHA]):
        image = cv2.merge([cv2.extractChannel(image, 0), cv2.extractChannel(image, 3)])
    image = without_opaque_alpha(image)
    if source.header.format == ".tif":
        return image  # OpenCV's TIFF decoder orients the image whatever the flags
    return orient(image, source.header.orientation)


_DIAGNOSES: dict[str, Callable[[bytes], str]] = {
    ".png": png_problem,
    ".webp": webp_problem,
    ".tif": lambda data: "libtiff refused it",
    ".bmp": lambda data: "it is cut short or its header is wrong",
    ".gif": lambda data: "giflib refused it",
    ".avif": lambda data: "libavif refused it",
}


def decode(source: Source, reduction: int = 1) -> Decoded:
    """Decode a source at 1/reduction of its size (JPEG only for reduction > 1)."""
    if source.header.format == ".jpg":
        return decode_jpeg(source, reduction)
    if source.header.format == ".heic":
        image, embedded = decode_heif(source.data, source.name)
        return Decoded(without_opaque_alpha(image), embedded)
    kind = FORMAT_NAMES[source.header.format]
    buffer = np.frombuffer(source.data, np.uint8)
    flags = cv2.IMREAD_COLOR if source.header.format == ".bmp" else cv2.IMREAD_UNCHANGED
    found: Image | None = None
    kinds: Sequence[int] = ()
    blocks: Sequence[np.ndarray] = ()
    try:
        found, kinds, blocks = cv2.imdecodeWithMetadata(buffer, flags)
    except cv2.error as error:
        if "validateInputImageSize" in str(error):
            width, height = source.header.size
            raise LimitExceeded(
                f"{source.name}: {width}x{height} pixels ({megapixels(width * height)}"
                " megapixels) is more than the decoder's limit (OPENCV_IO_MAX_IMAGE_PIXELS)"
            ) from None
    if found is None or found.size == 0:
        problem = _DIAGNOSES[source.header.format](source.data)
        raise ImageDecodeError(
            f"{source.name} cannot be decoded: its {kind} data is damaged ({problem})"
        )
    image = _as_decoded(found, source) if flags == cv2.IMREAD_UNCHANGED else found
    embedded = opencv_embedded(kinds, blocks)
    if source.header.format == ".avif" and embedded.profile is None:
        embedded = replace(embedded, profile=avif_profile(source.data))
    if source.header.format == ".tif":
        embedded = replace(embedded, profile=tiff_profile(source.data))
    return Decoded(image, embedded)
