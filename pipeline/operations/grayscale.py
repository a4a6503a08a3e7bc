"""Convert to grayscale.

String forms: "grayscale", "grayscale=true" (the same boolean words as split).
Object form: {"op": "grayscale"} or {"op": "grayscale", "enabled": false}.
The result has one channel, so it is encoded as a gray image where the format allows (WebP
stores it as color); converting an image that is already gray leaves it as it is.
"""

from __future__ import annotations

import cv2

from pipeline.operation import Image, Operation
from pipeline.params import Flag, Param


def grayscale(image: Image, *, enabled: bool = True) -> Image:
    """Convert a BGR image to one gray channel (or return it as it is when not enabled)."""
    if not enabled or image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


OPERATION = Operation(
    name="grayscale",
    description="Convert to one gray channel.",
    apply=grayscale,
    params=(Param("enabled", Flag(), "False keeps the step as a no-op.", default=True),),
    string_forms=("grayscale", "grayscale=true"),
    positional=("enabled",),
)
