"""The job store: one record per job, shared by the API and every worker.

Two back ends keep the same contract (tests/worker/test_store.py runs one suite
against both): Redis, when ``REDIS_URL`` is set, and SQLite under
``IMGSERVE_STATE_DIR`` for the embedded default. Every state change is atomic
(a Lua script or one SQLite transaction), bumps the job's ``version`` and wakes
long-polls waiting on it (Redis: pub/sub; SQLite: a 50 ms poll).

Errors::

    StoreError
     └── StoreUnavailable   the back end does not answer
          └── StoreTimedOut  it did not answer in time: the change may have been made
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from worker.jobs import Job, Start

if TYPE_CHECKING:
    from worker.broker import Held
    from worker.settings import Settings

BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Upper bounds (seconds) of the per-operation time histogram."""


class StoreError(Exception):
    """Raised when the job store cannot do what was asked."""


class StoreUnavailable(StoreError):
    """Raised when the job store's back end does not answer."""


class StoreTimedOut(StoreUnavailable):
    """Raised when the back end took too long to answer: the change may have been made."""


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
    images: dict[str, int]
    operations: dict[str, OperationTimes]


def bucket_index(seconds: float) -> int:
    """Return the first histogram bucket that holds seconds (len(BUCKETS) for +Inf)."""
    for i, bound in enumerate(BUCKETS):
        if seconds <= bound:
            return i
    return len(BUCKETS)


def counter_increments(outcome: str, timings: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Return the (counter, increment) pairs one finished image adds to the stats."""
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
    images = {"succeeded": 0, "failed": 0}
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


@dataclass(frozen=True)
class Peek:
    """What a long-poll needs to know of a job before it waits: a few fields, not the job."""

    version: int
    finished: bool
    changed_at: float


@dataclass(frozen=True)
class Finish:
    """A running image's outcome, to record."""

    index: int
    error: str | None = None
    timings: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """What one ``JobStore.step`` did."""

    started: Start | None
    """The decision on the image asked to start; None when none was."""
    claimed: range
    """The images of the job's next task; empty when none was asked for or none is left."""
    spec: Job | None
    """The job as it was created, when asked for and the job exists."""
    attempt: int = 0
    """The attempts of the image asked to start, this one included (a retry: above 1)."""


class JobStore(Protocol):
    """What the API and the workers ask of a job store."""

    def ping(self) -> None:
        """Raise StoreUnavailable unless the back end answers."""

    def create(self, job: Job, *, window: int, messages: Sequence[Held] = ()) -> list[int]:
        """Store a new job and claim its first window of images (their indices) to enqueue.

        messages: the tasks of those images, held back from the broker (worker.broker), to
        push in the same atomic change; only the Redis store, on the broker's Redis, can.
        """

    def get(self, job_id: str) -> Job | None:
        """Return the job, or None when there is no such job (or it expired)."""

    def list_jobs(self, *, limit: int, offset: int) -> list[Job]:
        """Return recent jobs, newest first."""

    def step(
        self,
        job_id: str,
        *,
        finish: Finish | None = None,
        start: int | None = None,
        claim: int = 0,
        window: int = 1,
        max_attempts: int = 3,
        spec: bool = False,
    ) -> Step:
        """Move a job along in one atomic change (one round trip), in this order.

        finish: record a running image as succeeded (no error) or failed, with its
        step times. start: mark an image running, counting the attempt, unless it must
        not run (see Job.start_image). claim > 0: take up to claim images for the job's
        next task (see Job.claim_next). spec: read the job as it was created.
        """

    def claim_next(self, job_id: str, *, count: int = 1, window: int = 1) -> range:
        """Take the job's next images to enqueue as one task (see Job.claim_next)."""

    def start_image(self, job_id: str, index: int, *, max_attempts: int) -> Start:
        """Mark an image running (counting the attempt) unless it must not run."""

    def finish_image(
        self,
        job_id: str,
        index: int,
        *,
        error: str | None,
        timings: list[tuple[str, float]],
    ) -> None:
        """Record a running image as succeeded (no error) or failed, with its step times."""

    def cancel(self, job_id: str) -> Job | None:
        """Cancel the job's images that have not started; return the job (None if unknown)."""

    def reap_stale(self, job_id: str, *, older_than: float) -> int:
        """Fail the images whose worker is gone (see Job.reap); return how many."""

    def peek(self, job_id: str) -> Peek | None:
        """Return the job's version, whether it is finished and when it last changed."""

    def following(self, job_id: str) -> AbstractContextManager[None]:
        """Follow the job's changes from now on (before creating it), for a wait inside.

        Such a wait needs no read of the job to learn what changed before it began.
        """

    def wait(self, job_id: str, *, version: int, timeout: float, coalesce: float = 0.0) -> None:
        """Return once the job's version differs from version, or after timeout seconds.

        With coalesce, a change that leaves the job unfinished answers only once coalesce
        seconds have passed since the call (later changes join it); a finished job, or a
        missing one, answers at once.
        """

    def stats(self) -> Stats:
        """Return counts of jobs by state, images by outcome, and operation times."""


class SingleSteps:
    """The one-change-at-a-time methods of a store, each one ``step`` of the store."""

    def claim_next(self: JobStore, job_id: str, *, count: int = 1, window: int = 1) -> range:
        """Take the job's next images to enqueue as one task."""
        return self.step(job_id, claim=count, window=window).claimed

    def start_image(self: JobStore, job_id: str, index: int, *, max_attempts: int) -> Start:
        """Mark an image running unless it must not run."""
        started = self.step(job_id, start=index, max_attempts=max_attempts).started
        return started or "skip"

    def finish_image(
        self: JobStore,
        job_id: str,
        index: int,
        *,
        error: str | None,
        timings: list[tuple[str, float]],
    ) -> None:
        """Record a running image's outcome and its step times."""
        self.step(job_id, finish=Finish(index, error, timings))


def open_store(settings: Settings) -> JobStore:
    """Open the store the settings ask for: Redis with REDIS_URL, else SQLite."""
    if settings.redis_url:
        from worker.store.redis_store import RedisJobStore

        return RedisJobStore.from_url(settings.redis_url, ttl=settings.job_ttl)
    from worker.store.sqlite_store import SqliteJobStore

    return SqliteJobStore(settings.state_dir / "jobs.sqlite3", ttl=settings.job_ttl)
