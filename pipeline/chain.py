"""A parsed chain of operations: normalized steps that run in order."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pipeline.operation import Operation
from pipeline.operations import find_operation
from pipeline.params import show


@dataclass(frozen=True)
class Step:
    """One operation by its canonical name, with every parameter normalized and defaulted."""

    op: str
    params: Mapping[str, object]

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", dict(self.params))

    def __hash__(self) -> int:
        return hash((self.op, tuple(sorted(self.params.items()))))

    @property
    def operation(self) -> Operation:
        """Return the declaration of this step's operation."""
        operation = find_operation(self.op)
        if operation is None:
            raise LookupError(f"no operation is called {self.op!r}")
        return operation

    def describe(self) -> str:
        """Say what this step does in a few words, e.g. "resize factor 2"."""
        return " ".join([self.op, *(f"{name} {show(v)}" for name, v in self.params.items())])

    def to_json(self) -> dict[str, object]:
        """Return the normalized object form, e.g. {"op": "resize", "factor": 2.0}."""
        return {"op": self.op, **self.params}


@dataclass(frozen=True)
class Chain:
    """An ordered, immutable chain of steps."""

    steps: tuple[Step, ...] = ()

    def __iter__(self) -> Iterator[Step]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def output_count(self) -> int:
        """Return how many images the chain makes of one input (4 ** enabled splits)."""
        count = 1
        for step in self.steps:
            count *= step.operation.outputs(step.params)
        return count

    def to_json(self) -> list[dict[str, object]]:
        """Return the normalized object form, which parse_operations reads back unchanged."""
        return [step.to_json() for step in self.steps]
