"""The registry of operations: one module each, listed here explicitly.

To add an operation, write its module (a function and its Operation declaration) and add a
line to OPERATIONS.
"""

from __future__ import annotations

from pipeline.operation import Operation
from pipeline.operations import blur, crop, flip, grayscale, resize, rotate, sharpen, split

OPERATIONS: tuple[Operation, ...] = (
    resize.OPERATION,
    split.OPERATION,
    blur.OPERATION,
    crop.OPERATION,
    rotate.OPERATION,
    flip.OPERATION,
    grayscale.OPERATION,
    sharpen.OPERATION,
)

_BY_NAME = {name: op for op in OPERATIONS for name in (op.name, *op.aliases)}
KNOWN_NAMES = tuple(sorted(_BY_NAME, key=str.lower))


def find_operation(name: str) -> Operation | None:
    """Return the operation called name (or one of its aliases), if there is one."""
    return _BY_NAME.get(name)
