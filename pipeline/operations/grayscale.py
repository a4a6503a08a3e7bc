"""Convert to grayscale.

String forms: "grayscale", "grayscale=true" (the same boolean words as split).
Object form: {"op": "grayscale"} or {"op": "grayscale", "enabled": false}.
The result has one channel (two with alpha: BGRA becomes gray and alpha), so it is encoded
as a gray image where the format allows (WebP stores it as color); converting an image that
is already gray leaves it as it is.
"""

from __future__ import annotations

import cv2

from pipeline.operation import Image, Operation
from pipeline.params import Flag, Param


def grayscale(image: Image, *, enabled: bool = True) -> Image:
    """Convert BGR to one gray channel, BGRA to gray and alpha (or return it when not enabled)."""
    if not enabled or image.ndim == 2 or image.shape[2] == 2:
        return image
    if image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    gray = cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.merge([gray, cv2.extractChannel(image, 3)])


OPERATION = Operation(
    name="grayscale",
    description="Convert to one gray channel.",
    apply=grayscale,
    params=(Param("enabled", Flag(), "False keeps the step as a no-op.", default=True),),
    string_forms=("grayscale", "grayscale=true"),
    positional=("enabled",),
)
