"""Sharpen with an unsharp mask.

String forms: "sharpen=1" (amount), "sharpen=1.5,2" (amount, sigma).
Object form: {"op": "sharpen", "amount": 1.5, "sigma": 2}.
The result is image + amount * (image - blurred), with a Gaussian of the given sigma (the
radius of the edges it strengthens), saturated to the samples' range. Amount 0 changes
nothing. An image with alpha is sharpened on premultiplied colour (see pipeline.alpha).
"""

from __future__ import annotations

import cv2

from pipeline.alpha import premultiplied
from pipeline.operation import Image, Operation
from pipeline.params import FloatRange, Param


def sharpen(image: Image, *, amount: float = 1.0, sigma: float = 1.0) -> Image:
    """Sharpen an image by adding amount times its difference from a Gaussian blur."""

    def unsharp(values: Image) -> Image:
        blurred = cv2.GaussianBlur(values, (0, 0), sigma)
        return cv2.addWeighted(values, 1 + amount, blurred, -amount, 0)

    return premultiplied(image, unsharp)


OPERATION = Operation(
    name="sharpen",
    description="Sharpen with an unsharp mask of a given amount and sigma.",
    apply=sharpen,
    params=(
        Param("amount", FloatRange(0, 10), "Strength: 0 changes nothing.", default=1.0),
        Param("sigma", FloatRange(0.1, 50), "Radius of the blur the mask subtracts.", default=1.0),
    ),
    string_forms=("sharpen=1", "sharpen=1.5,2"),
    positional=("amount", "sigma"),
)
