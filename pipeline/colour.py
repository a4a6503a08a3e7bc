"""Colour profiles: convert an image with an embedded ICC profile to sRGB, with LittleCMS.

Pillow's ImageCms (LittleCMS 2) is imported only when an image has a profile that is not
sRGB, or is CMYK: an image without a profile is taken as sRGB and pays nothing. The output
of a conversion is sRGB and is written untagged, as imgproxy does: browsers and viewers take
an untagged image as sRGB, and a 3 KB profile in every thumbnail is weight for nothing.
LittleCMS transforms 8-bit samples here (Pillow has no 16-bit colour modes), so a 16-bit
image with a profile to convert comes out with 8 bits.
"""

from __future__ import annotations

import io
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from pipeline.alpha import has_alpha
from pipeline.operation import Image

_SRGB_NAMES = ("sRGB", "sRGB IEC61966-2.1", "sRGB built-in", "sRGB IEC61966-2-1")


def is_srgb(profile: bytes) -> bool:
    """Return whether a profile says it is sRGB, by its description (as libvips checks)."""
    from PIL import ImageCms

    try:
        described = ImageCms.getProfileDescription(_profile(profile)).strip()
    except ImageCms.PyCMSError:
        return False
    return described in _SRGB_NAMES


def to_srgb(image: Image, profile: bytes | None) -> Image:
    """Convert a BGR, BGRA or gray image from its ICC profile to sRGB; gray is left as it is."""
    if profile is None or image.ndim == 2 or image.shape[2] == 2 or is_srgb(profile):
        return image
    from PIL import Image as PILImage
    from PIL import ImageCms

    if image.dtype != np.uint8:
        image = cv2.convertScaleAbs(image, alpha=255 / 65535)
    mode = "RGBA" if has_alpha(image) else "RGB"
    code = cv2.COLOR_BGRA2RGBA if mode == "RGBA" else cv2.COLOR_BGR2RGB
    picture = PILImage.fromarray(cv2.cvtColor(image, code), mode)
    try:
        source = _profile(profile)
    except ImageCms.PyCMSError:
        return image  # a profile LittleCMS cannot read: the numbers are taken as sRGB
    converted = ImageCms.applyTransform(picture, _transform(source, mode, mode))
    assert converted is not None
    back = cv2.COLOR_RGBA2BGRA if mode == "RGBA" else cv2.COLOR_RGB2BGR
    return cv2.cvtColor(np.asarray(converted), back)


def cmyk_to_bgr(cmyk: Image, profile: bytes | None, *, inverted: bool) -> Image:
    """Convert decoded CMYK samples to BGR: by its profile if it has one, else by the formula."""
    if inverted:
        cmyk = 255 - cmyk
    if profile is not None:
        from PIL import Image as PILImage
        from PIL import ImageCms

        try:
            source = _profile(profile)
        except ImageCms.PyCMSError:
            source = None
        if source is not None:
            picture = PILImage.fromarray(np.ascontiguousarray(cmyk), "CMYK")
            converted = ImageCms.applyTransform(picture, _transform(source, "CMYK", "RGB"))
            assert converted is not None
            return cv2.cvtColor(np.asarray(converted), cv2.COLOR_RGB2BGR)
    white = 255 - cmyk.astype(np.uint16)
    rgb = white[..., :3] * white[..., 3:] // 255
    return np.ascontiguousarray(rgb[..., ::-1].astype(np.uint8))


@lru_cache(maxsize=8)
def _profile(data: bytes) -> Any:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(io.BytesIO(data))


@lru_cache(maxsize=8)
def _transform(source: Any, in_mode: str, out_mode: str) -> Any:
    from PIL import ImageCms

    srgb = ImageCms.createProfile("sRGB")
    return ImageCms.buildTransform(source, srgb, in_mode, out_mode)
