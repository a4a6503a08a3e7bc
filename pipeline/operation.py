"""The declaration of an operation: its function, parameters, forms and effect on sizes.

Each module in ``pipeline.operations`` declares one ``Operation``; the registry lists them.
Parsing, validation, size planning, the JSON Schema and the README table all read these
declarations, so an operation is described once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

from cv2.typing import MatLike

from pipeline.params import Param

Image: TypeAlias = MatLike
"""An 8- or 16-bit image: rows x columns x 3 (BGR) or 4 (BGRA), rows x columns when gray, or
rows x columns x 2 (gray and alpha). Alpha is straight, not premultiplied."""

Size: TypeAlias = tuple[int, int]
"""(width, height) in pixels."""


class PlanError(ValueError):
    """Raised when a step cannot apply to an image of the size it gets."""


@dataclass(frozen=True)
class Operation:
    """Declare an operation: name, one-line description, function and parameters.

    ``apply(image, **params)`` returns an image, or a list of images for a fan-out.
    ``positional`` maps the string form's comma-separated values ("crop=1,2,3,4") to
    parameters, unless ``split_text`` parses the value itself. ``finish`` checks rules that
    span parameters and fills defaults that depend on others, raising ParamError.
    ``plan((width, height), **params)`` gives the output sizes without pixels, raising PlanError
    when the step cannot apply; None means the size is unchanged. ``fan_out(params)`` is how
    many images the step makes of each image it gets.
    """

    name: str
    description: str
    apply: Callable[..., Image | list[Image]]
    params: tuple[Param, ...]
    string_forms: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    positional: tuple[str, ...] = ()
    split_text: Callable[[str], dict[str, str]] | None = None
    finish: Callable[[dict[str, object]], dict[str, object]] | None = None
    plan: Callable[..., list[Size]] | None = None
    fan_out: Callable[[Mapping[str, object]], int] | None = None
    schema_extra: Mapping[str, object] = field(default_factory=dict)

    def param(self, name: str) -> Param | None:
        """Return the declared parameter called name, if there is one."""
        return next((p for p in self.params if p.name == name), None)

    def outputs(self, params: Mapping[str, object]) -> int:
        """Return how many images this step makes of each image it gets."""
        return self.fan_out(params) if self.fan_out else 1

    def sizes(self, width: int, height: int, params: Mapping[str, object]) -> list[Size]:
        """Return the sizes this step makes of a width x height image."""
        return self.plan((width, height), **params) if self.plan else [(width, height)]
