"""Resize by a factor, or to a width and/or height.

String forms: "resize=0.5" (factor), "resize=800x600", "resize=800x", "resize=x600".
Object forms: {"op": "resize", "factor": 0.5}, {"op": "resize", "width": 800}.
Give exactly one of factor, or width and/or height. A factor makes
(max(1, round(w * factor)), max(1, round(h * factor))), with Python's round (half to even);
one side keeps the aspect ratio, the other rounding the same way; both give that exact size.
Shrinking uses INTER_AREA; enlarging INTER_CUBIC, which measured sharper than INTER_LINEAR
and no slower. An image with alpha is resampled on premultiplied colour
(see pipeline.alpha).
"""

from __future__ import annotations

import cv2

from pipeline.alpha import premultiplied
from pipeline.operation import Image, Operation, Size
from pipeline.params import FloatRange, IntRange, Param, ParamError


def target_size(
    size: Size,
    /,
    *,
    factor: float | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Size:
    """Return the size a resize makes of an image of the given size."""
    if factor is not None:
        return max(1, round(size[0] * factor)), max(1, round(size[1] * factor))
    if width is not None and height is not None:
        return width, height
    if width is not None:
        return width, max(1, round(size[1] * width / size[0]))
    if height is not None:
        return max(1, round(size[0] * height / size[1])), height
    raise ParamError("resize needs a factor, or a width and/or height")


def resize_to(image: Image, size: Size) -> Image:
    """Resize an image to exactly size, by area when shrinking and cubic when enlarging."""
    rows, cols = image.shape[:2]
    if (cols, rows) == size:
        return image
    shrinking = size[0] <= cols and size[1] <= rows
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return premultiplied(
        image, lambda values: cv2.resize(values, size, interpolation=interpolation)
    )


def resize(
    image: Image,
    *,
    factor: float | None = None,
    width: int | None = None,
    height: int | None = None,
) -> Image:
    """Resize an image by a factor or to a width and/or height."""
    rows, cols = image.shape[:2]
    return resize_to(image, target_size((cols, rows), factor=factor, width=width, height=height))


def _finish(params: dict[str, object]) -> dict[str, object]:
    if "factor" in params and ("width" in params or "height" in params):
        raise ParamError("resize takes a factor or a width and/or height, not both")
    if not params:
        raise ParamError("resize needs a factor, or a width and/or height")
    return params


def _split_text(text: str) -> dict[str, str]:
    if "x" not in text:
        return {"factor": text}
    width, _, height = text.partition("x")
    return {name: value for name, value in (("width", width), ("height", height)) if value}


SIDE = IntRange(1, 65535)
OPERATION = Operation(
    name="resize",
    description="Resize by a factor, or to a width and/or height (one keeps the aspect ratio).",
    apply=resize,
    params=(
        Param("factor", FloatRange(0.05, 100), "Scale both sides by this factor."),
        Param("width", SIDE, "Target width; alone, the height follows the aspect ratio."),
        Param("height", SIDE, "Target height; alone, the width follows the aspect ratio."),
    ),
    string_forms=("resize=0.5", "resize=800x600", "resize=800x", "resize=x600"),
    split_text=_split_text,
    finish=_finish,
    plan=lambda size, /, **params: [target_size(size, **params)],
    schema_extra={
        "oneOf": [
            {"required": ["factor"]},
            {"anyOf": [{"required": ["width"]}, {"required": ["height"]}]},
        ]
    },
)
