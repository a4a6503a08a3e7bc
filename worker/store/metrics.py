"""The store's counters for /metrics: images by outcome, and each operation's times.

Both back ends keep them as flat counters (a Redis hash, a SQLite table) named by
``counter_increments`` and add them up in the same atomic change that records an
image, so a scrape costs a read of the counters, never of the jobs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from worker.jobs import ImageState

BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the per-operation time histogram."""


@dataclass
class OperationTimes:
    """A histogram of one operation's times, cumulative like Prometheus's."""

    count: int = 0
    total: float = 0.0
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))


@dataclass
class Stats:
    """Service-wide counters for /metrics."""

    jobs: dict[str, int]
    """Jobs kept in the store (not expired), by state: every state is a key."""
    images: dict[str, int]
    """Images processed, by outcome ("succeeded", "failed")."""
    operations: dict[str, OperationTimes]


def bucket_index(seconds: float) -> int:
    """Return the first histogram bucket that holds seconds (len(BUCKETS) for +Inf)."""
    for i, bound in enumerate(BUCKETS):
        if seconds <= bound:
            return i
    return len(BUCKETS)


def counter_increments(
    error: str | None, timings: list[tuple[str, float]]
) -> list[tuple[str, float]]:
    """Return the (counter, increment) pairs an image that ended (failed with an error) adds."""
    outcome = ImageState.FAILED if error else ImageState.SUCCEEDED
    pairs: list[tuple[str, float]] = [(f"images:{outcome}", 1.0)]
    for op, seconds in timings:
        pairs += [
            (f"op:{op}:count", 1.0),
            (f"op:{op}:sum", seconds),
            (f"op:{op}:b{bucket_index(seconds)}", 1.0),
        ]
    return pairs


def stats_from_counters(jobs: dict[str, int], values: dict[str, Any]) -> Stats:
    """Rebuild Stats from flat counters named as counter_increments names them."""
    images = {str(ImageState.SUCCEEDED): 0, str(ImageState.FAILED): 0}
    operations: dict[str, OperationTimes] = {}
    for name, value in values.items():
        kind, _, rest = str(name).partition(":")
        if kind == "images":
            images[rest] = int(float(value))
            continue
        op, _, part = rest.rpartition(":")
        times = operations.setdefault(op, OperationTimes())
        if part == "count":
            times.count = int(float(value))
        elif part == "sum":
            times.total = float(value)
        elif part.startswith("b") and int(part[1:]) < len(times.buckets):
            times.buckets[int(part[1:])] = int(float(value))
    return Stats(jobs=jobs, images=images, operations=operations)
