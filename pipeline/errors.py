"""Errors raised by the pipeline.

    PipelineError
    ├── InvalidOperation   the operations or encode options are wrong (.problems lists each)
    ├── ImageDecodeError   an input is empty, not an image, damaged or cut short
    ├── UnsupportedFormat  an input or output format is not one the pipeline handles
    ├── LimitExceeded      an input is larger than the Limits allow
    └── ImageWriteError    an output could not be encoded or written

Every error has ``detail``: one sentence that is safe to show a client. Files are named by
their base name only, since callers may pass resolved server paths.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """Point at one wrong value in a request and say what is wrong with it."""

    pointer: str
    detail: str


def pointer_to(base: str, key: object) -> str:
    """Return the JSON Pointer to member key of the value at base."""
    return f"{base}/{str(key).replace('~', '~0').replace('/', '~1')}"


class PipelineError(Exception):
    """Raised when the pipeline cannot do what it was asked; the base of all its errors."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidOperation(PipelineError):
    """Raised when operations or encode options are invalid, listing every problem."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p.pointer}: {p.detail}" for p in self.problems))


class ImageDecodeError(PipelineError):
    """Raised when an input is empty, not an image, damaged or truncated."""


class UnsupportedFormat(PipelineError):
    """Raised when an input or output is in a format the pipeline does not handle."""


class LimitExceeded(PipelineError):
    """Raised when an input is larger, in bytes or pixels, than the limits allow."""


class ImageWriteError(PipelineError):
    """Raised when an output cannot be encoded or written, or would overwrite the input."""
