"""Split an image into its four quadrants, in the order top-left, top-right, bottom-left,
bottom-right.

String forms: "split", "split=true" (also "splitQuadrants=True", as py-image-server took);
the value is one of True, true, 1, yes or False, false, None, 0, no.
Object form: {"op": "split"} or {"op": "split", "enabled": false}.
The top and left parts get h // 2 rows and w // 2 columns; the rest goes to the bottom and
right. The quadrants are numpy views of the image: nothing is copied. Every image in flight
is split, so two splits make 16 images. A disabled split is kept in the chain as a no-op.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipeline.operation import Image, Operation, PlanError, Size
from pipeline.params import Flag, Param


def split_quadrants(image: Image, *, enabled: bool = True) -> list[Image]:
    """Split an image into its four quadrants (or return it alone when not enabled)."""
    if not enabled:
        return [image]
    rows, cols = image.shape[:2]
    top, left = rows // 2, cols // 2
    return [image[:top, :left], image[:top, left:], image[top:, :left], image[top:, left:]]


def _plan(size: Size, /, *, enabled: bool) -> list[Size]:
    width, height = size
    if not enabled:
        return [size]
    if width < 2 or height < 2:
        raise PlanError(f"split needs an image of at least 2x2 pixels; it gets {width}x{height}")
    left, top = width // 2, height // 2
    return [(left, top), (width - left, top), (left, height - top), (width - left, height - top)]


def _fan_out(params: Mapping[str, object]) -> int:
    return 4 if params["enabled"] else 1


OPERATION = Operation(
    name="split",
    aliases=("splitQuadrants",),
    description="Split into four quadrants: top-left, top-right, bottom-left, bottom-right.",
    apply=split_quadrants,
    params=(Param("enabled", Flag(), "False keeps the step as a no-op.", default=True),),
    string_forms=("split", "split=true", "splitQuadrants=True"),
    positional=("enabled",),
    plan=_plan,
    fan_out=_fan_out,
)
