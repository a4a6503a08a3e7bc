"""Rotate clockwise by 90, 180 or 270 degrees.

String form: "rotate=90". Object form: {"op": "rotate", "degrees": 90}.
Quarter turns only, so no pixel is resampled; 90 and 270 swap width and height.
"""

from __future__ import annotations

import cv2

from pipeline.operation import Image, Operation, Size
from pipeline.params import Choice, Param

_CODES = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}


def rotate(image: Image, *, degrees: int) -> Image:
    """Rotate an image clockwise by 90, 180 or 270 degrees."""
    return cv2.rotate(image, _CODES[degrees])


def _plan(size: Size, /, *, degrees: int) -> list[Size]:
    return [size if degrees == 180 else (size[1], size[0])]


OPERATION = Operation(
    name="rotate",
    description="Rotate clockwise by 90, 180 or 270 degrees.",
    apply=rotate,
    params=(Param("degrees", Choice((90, 180, 270)), "Clockwise quarter turns.", required=True),),
    string_forms=("rotate=90",),
    positional=("degrees",),
    plan=_plan,
)
