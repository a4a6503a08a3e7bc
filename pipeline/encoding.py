"""Encoder options and encoding an image to bytes in memory.

Defaults favour speed at good quality: JPEG quality 90; WebP lossy at quality 80 (OpenCV's
default WebP is lossless: about 7x larger and 7x slower to encode, measured here); PNG zlib
level 1 with the SUB filter, OpenCV's own fast default (a 12 MP image in about 0.3 s, where
level 6 takes 1.7 s for files 20% smaller). TIFF uses OpenCV's default (LZW); BMP has no
options. AVIF: quality 65, imgproxy's default, at libavif's fastest speed (9): 4x faster
than speed 8 for files about the same size. JPEG is baseline, 4:2:0, with standard Huffman
tables unless jpeg_progressive, jpeg_subsampling "4:4:4" or jpeg_optimize say otherwise.

Before encoding, an image is fitted to what its format holds: JPEG and BMP have no alpha, so
an image with alpha is composed over ``background`` (default white); only PNG and TIFF hold
16-bit samples, so the others get 8 bits, rounded; OpenCV writes no gray and alpha, so that
becomes BGRA. A gray image stays one channel where the format has gray (not WebP).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from pipeline.alpha import flatten, has_alpha
from pipeline.embedded import Embedded, embedding, with_tiff_profile
from pipeline.errors import ImageWriteError, InvalidOperation, Problem, pointer_to
from pipeline.headers import FORMAT_NAMES
from pipeline.metadata import METADATA_MODES
from pipeline.operation import Image
from pipeline.params import Choice, Flag, HexColor, IntRange, Param, ParamError, describe, show

Encoded = np.ndarray[Any, np.dtype[np.uint8]]

ENCODE_PARAMS = (
    Param("jpeg_quality", IntRange(0, 100), "JPEG quality.", default=90),
    Param("webp_quality", IntRange(1, 100), "WebP quality (always lossy).", default=80),
    Param("png_compression", IntRange(0, 9), "PNG zlib level: 0 none, 1 fast, 9 small.", default=1),
    Param("avif_quality", IntRange(0, 100), "AVIF quality (libavif's scale).", default=65),
    Param("jpeg_progressive", Flag(), "Write progressive JPEGs.", default=False),
    Param(
        "jpeg_subsampling",
        Choice(("4:2:0", "4:4:4")),
        "JPEG chroma subsampling: 4:2:0 halves colour resolution, 4:4:4 keeps it.",
        default="4:2:0",
    ),
    Param("jpeg_optimize", Flag(), "Optimise JPEG Huffman tables: smaller, slower.", default=False),
    Param(
        "background",
        HexColor(),
        "The colour under transparent pixels in formats without alpha (JPEG, BMP).",
        default="#ffffff",
    ),
    Param(
        "color",
        Choice(("srgb", "keep")),
        "srgb converts an image with an ICC profile to sRGB; keep keeps and embeds its profile.",
        default="srgb",
    ),
    Param(
        "metadata",
        Choice(METADATA_MODES),
        "strip drops EXIF and XMP; copyright keeps the artist and copyright; keep keeps all.",
        default="strip",
    ),
)
_DEEP = (".png", ".tif")
_SAMPLING = {
    "4:2:0": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
    "4:4:4": cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444,
}
_CARRIERS = (".jpg", ".png", ".webp", ".avif")
_MAX_SIDE = {".jpg": 65500, ".webp": 16383, ".avif": 65536}


@dataclass(frozen=True)
class EncodeOptions:
    """Choose the encoders' quality and compression settings."""

    jpeg_quality: int = 90
    webp_quality: int = 80
    png_compression: int = 1
    avif_quality: int = 65
    jpeg_progressive: bool = False
    jpeg_subsampling: str = "4:2:0"
    jpeg_optimize: bool = False
    background: str = "#ffffff"
    color: str = "srgb"
    metadata: str = "strip"

    def __post_init__(self) -> None:
        for param in ENCODE_PARAMS:
            try:
                param.type.convert(getattr(self, param.name), param.name)
            except ParamError as error:
                raise ValueError(error.message) from None

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        """Return the background colour as (red, green, blue)."""
        red, green, blue = (int(self.background[i : i + 2], 16) for i in (1, 3, 5))
        return red, green, blue

    def to_json(self) -> dict[str, object]:
        """Return the options as a JSON object, which parse_encode_options reads back."""
        return asdict(self)


def parse_encode_options(obj: object, *, pointer: str = "/encode") -> EncodeOptions:
    """Parse a request's encode options (None for defaults), or raise InvalidOperation."""
    if obj is None:
        return EncodeOptions()
    if not isinstance(obj, Mapping):
        raise InvalidOperation([Problem(pointer, f"encode must be an object, not {describe(obj)}")])
    values: dict[str, Any] = {}
    problems = []
    names = {param.name: param for param in ENCODE_PARAMS}
    for key, value in obj.items():
        at = pointer_to(pointer, key)
        param = names.get(key) if isinstance(key, str) else None
        if param is None:
            allowed = ", ".join(names)
            detail = f"encode has no option {show(key)}; its options are {allowed}"
            problems.append(Problem(at, detail))
            continue
        try:
            values[param.name] = param.type.convert(value, param.name)
        except ParamError as error:
            problems.append(Problem(at, f"encode {error.message}"))
    if problems:
        raise InvalidOperation(problems)
    return EncodeOptions(**values)


def encode_options_schema() -> dict[str, object]:
    """Return the JSON Schema of the encode options object."""
    return {
        "title": "EncodeOptions",
        "description": "Encoder settings; each output's format comes from its extension.",
        "type": "object",
        "properties": {param.name: param.schema() for param in ENCODE_PARAMS},
        "additionalProperties": False,
    }


def _flags(image_format: str, options: EncodeOptions) -> list[int]:
    if image_format == ".jpg":
        sampling = _SAMPLING[options.jpeg_subsampling]
        return [
            *(cv2.IMWRITE_JPEG_QUALITY, options.jpeg_quality),
            *(cv2.IMWRITE_JPEG_PROGRESSIVE, int(options.jpeg_progressive)),
            *(cv2.IMWRITE_JPEG_OPTIMIZE, int(options.jpeg_optimize)),
            *(cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling),
        ]
    if image_format == ".avif":
        return [cv2.IMWRITE_AVIF_QUALITY, options.avif_quality, cv2.IMWRITE_AVIF_SPEED, 9]
    if image_format == ".webp":
        return [cv2.IMWRITE_WEBP_QUALITY, options.webp_quality]
    if image_format == ".png":
        level, sub = options.png_compression, cv2.IMWRITE_PNG_FILTER_SUB
        return [cv2.IMWRITE_PNG_COMPRESSION, level, cv2.IMWRITE_PNG_FILTER, sub]
    return []


def fit_format(image: Image, image_format: str, options: EncodeOptions) -> Image:
    """Return an image with the channels and depth its format holds (see the module's doc)."""
    if has_alpha(image) and image_format in (".jpg", ".bmp"):
        image = flatten(image, options.background_rgb)
    if image.dtype != np.uint8 and image_format not in _DEEP:
        image = cv2.convertScaleAbs(image, alpha=255 / 65535)
    if image.ndim == 3 and image.shape[2] == 2:
        gray, alpha = cv2.split(image)
        image = cv2.merge([gray, gray, gray, alpha])
    return image


def encode_image(
    image: Image,
    image_format: str,
    options: EncodeOptions,
    name: str,
    carried: Embedded = Embedded(),  # noqa: B008 (frozen, so sharing it is safe)
) -> Encoded:
    """Encode an image (a view is fine) in a format given by its canonical extension.

    carried: the profile, EXIF and XMP the output should hold; JPEG, PNG, WebP and AVIF get
    them all, TIFF only the profile, BMP nothing.
    """
    image = fit_format(image, image_format, options)
    rows, cols = image.shape[:2]
    kind = FORMAT_NAMES[image_format]
    most = _MAX_SIDE.get(image_format)
    if most is not None and max(rows, cols) > most:
        raise ImageWriteError(
            f"cannot write {name}: a {kind} image may be at most {most} pixels wide and high,"
            f" and this one is {cols}x{rows}"
        )
    kinds, blocks = embedding(carried.profile, carried.exif, carried.xmp)
    flags = _flags(image_format, options)
    try:
        if kinds and image_format in _CARRIERS:
            ok, encoded = cv2.imencodeWithMetadata(image_format, image, kinds, blocks, flags)
        else:
            ok, encoded = cv2.imencode(image_format, image, flags)
    except cv2.error:
        ok = False
    if not ok:
        raise ImageWriteError(f"cannot write {name}: OpenCV could not encode it as {kind}")
    if image_format == ".tif" and carried.profile:
        try:
            tagged = with_tiff_profile(encoded.tobytes(), carried.profile)
        except (KeyError, ValueError, struct.error):
            raise ImageWriteError(
                f"cannot write {name}: its ICC profile cannot be added to OpenCV's TIFF"
            ) from None
        return np.frombuffer(tagged, np.uint8)
    return encoded
