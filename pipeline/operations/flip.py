"""Mirror an image: horizontal swaps left and right, vertical swaps top and bottom.

String forms: "flip=horizontal", "flip=vertical".
Object form: {"op": "flip", "direction": "horizontal"}.
"""

from __future__ import annotations

import cv2

from pipeline.operation import Image, Operation
from pipeline.params import Choice, Param


def flip(image: Image, *, direction: str) -> Image:
    """Mirror an image left-right (horizontal) or top-bottom (vertical)."""
    return cv2.flip(image, 1 if direction == "horizontal" else 0)


OPERATION = Operation(
    name="flip",
    description="Mirror left-right (horizontal) or top-bottom (vertical).",
    apply=flip,
    params=(
        Param(
            "direction",
            Choice(("horizontal", "vertical")),
            "horizontal swaps left and right; vertical swaps top and bottom.",
            required=True,
        ),
    ),
    string_forms=("flip=horizontal", "flip=vertical"),
    positional=("direction",),
)
