"""Blur with a Gaussian kernel.

String forms: "blur=25" (kernel), "blur=0,2.5" (kernel, sigma), "blur=25,3".
Object forms: {"op": "blur", "kernel": 25}, {"op": "blur", "kernel": 0, "sigma": 2.5}.
This is cv2.GaussianBlur(image, (kernel, kernel), sigma) with OpenCV's conventions: kernel is
0 or odd up to 255, and 0 derives the kernel from sigma; sigma 0 derives sigma from the
kernel. When sigma is not given it is 4 for kernel 0 and 0 (derived) otherwise, so "blur=25"
normalizes to {"kernel": 25, "sigma": 0.0} and {"op": "blur"} to {"kernel": 0, "sigma": 4.0}.
Kernel 0 with sigma 0 is refused, since each would be derived from the other.
An image with alpha is blurred on premultiplied colour (see pipeline.alpha).
"""

from __future__ import annotations

import cv2

from pipeline.alpha import premultiplied
from pipeline.operation import Image, Operation
from pipeline.params import FloatRange, OddInt, Param, ParamError


def gaussian_blur(image: Image, *, kernel: int, sigma: float) -> Image:
    """Blur an image with a kernel x kernel Gaussian of the given sigma."""
    return premultiplied(image, lambda values: cv2.GaussianBlur(values, (kernel, kernel), sigma))


def _finish(params: dict[str, object]) -> dict[str, object]:
    if params.get("sigma") is None:
        params["sigma"] = 4.0 if params["kernel"] == 0 else 0.0
    if params["kernel"] == 0 and params["sigma"] == 0:
        raise ParamError("blur needs a kernel above 0 or a sigma above 0", "sigma")
    return params


OPERATION = Operation(
    name="blur",
    description="Gaussian blur with an odd kernel size, or a sigma (kernel 0).",
    apply=gaussian_blur,
    params=(
        Param(
            "kernel",
            OddInt(255, "derive it from sigma"),
            "Kernel size: odd, or 0 to derive it from sigma.",
            default=0,
        ),
        Param(
            "sigma",
            FloatRange(0, 100),
            "Standard deviation: 0 derives it from the kernel. Default 4 with kernel 0, else 0.",
        ),
    ),
    string_forms=("blur=25", "blur=0,2.5"),
    positional=("kernel", "sigma"),
    finish=_finish,
    # As _finish: sigma 0 needs a kernel above 0.
    schema_extra={
        "if": {"required": ["sigma"], "properties": {"sigma": {"const": 0}}},
        "then": {"required": ["kernel"], "properties": {"kernel": {"minimum": 1}}},
    },
)
