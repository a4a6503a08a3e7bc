"""Crop to a rectangle: x, y (the top-left corner) and width, height.

String form: "crop=10,20,300,200" (x, y, width, height).
Object form: {"op": "crop", "x": 10, "y": 20, "width": 300, "height": 200}.
The rectangle must lie inside the image the step gets (after any split before it, inside
every quadrant); the result is a numpy view, not a copy.
"""

from __future__ import annotations

from pipeline.operation import Image, Operation, PlanError, Size
from pipeline.params import IntRange, Param


def crop(image: Image, *, x: int, y: int, width: int, height: int) -> Image:
    """Crop an image to the width x height rectangle whose top-left corner is at (x, y)."""
    rows, cols = image.shape[:2]
    _plan((cols, rows), x=x, y=y, width=width, height=height)
    return image[y : y + height, x : x + width]


def _plan(size: Size, /, *, x: int, y: int, width: int, height: int) -> list[Size]:
    if x + width > size[0] or y + height > size[1]:
        raise PlanError(
            f"crop {width}x{height} at x={x}, y={y} does not fit the {size[0]}x{size[1]}"
            " image it gets"
        )
    return [(width, height)]


OFFSET, SIDE = IntRange(0, 65534), IntRange(1, 65535)
OPERATION = Operation(
    name="crop",
    description="Crop to the rectangle x, y, width, height (it must fit the image).",
    apply=crop,
    params=(
        Param("x", OFFSET, "Left edge, in pixels from the left.", required=True),
        Param("y", OFFSET, "Top edge, in pixels from the top.", required=True),
        Param("width", SIDE, "Width of the rectangle.", required=True),
        Param("height", SIDE, "Height of the rectangle.", required=True),
    ),
    string_forms=("crop=10,20,300,200",),
    positional=("x", "y", "width", "height"),
    plan=_plan,
)
