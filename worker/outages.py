"""Waiting out store and broker outages inside a task, instead of losing its work.

A task that cannot reach the job store or the broker (Redis restarting, full, read-only;
the state folder full) calls again with capped exponential backoff until it answers, up
to a deadline inside the task's soft time limit; past it the task's message goes back to
the queue (tasks.py). Every store call and publish a task makes goes through one
``Recorder``, so the task acknowledges its message only once its results are recorded
and the job's next tasks are published.

A call retried after an error may have been carried out anyway (a timeout; a reply lost
as Redis shut down). The store's changes are safe to repeat: finishing an image that no
longer runs changes nothing; starting one again by the same holder runs on, without
another attempt; a claim carries its task's first image as its key, so a claim made
again answers the batch the first one took (also for a redelivered task). A publish
repeated gives the job one task too many, whose images are skipped when finished or
running under a live holder.

What Celery 5.7 and kombu's Redis transport do, that this relies on: with late acks a
message is acknowledged when its task returns (or fails); kombu records each delivery
in its ``unacked`` hash and hands a message out again when it was not acknowledged
within ``visibility_timeout``. A consumer whose connection drops restarts and reconnects
(every 2, 4, 6 ... 30 s), pushing its deliveries back to the queue if Redis answers
then, else leaving them in that hash; its running tasks go on (not cancelled on
connection loss) and their acks, made once Redis is back, clear the hash. A
``Reject(requeue=True)`` pushes the message back at the head of its queue when Redis
answers, else it waits out the visibility timeout in the hash.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis
from kombu.exceptions import OperationalError

from worker.jobs import Job
from worker.liveness import Holder
from worker.store import Finish, JobStore, Move, Step, StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")
Enqueue = Callable[[str, list[range]], None]

_OUTAGES = (
    StoreUnavailable,
    OperationalError,  # kombu: the broker's connection failed, after Celery's own retries
    redis.ConnectionError,  # also BusyLoadingError: a restarted Redis reading its AOF
    redis.TimeoutError,
    redis.OutOfMemoryError,  # maxmemory with noeviction: writes refused until memory frees
    redis.ReadOnlyError,  # a replica, until it is promoted
    ConnectionError,
    TimeoutError,
)


def is_outage(exc: BaseException) -> bool:
    """Return whether exc says the store or the broker cannot answer for now."""
    if isinstance(exc, _OUTAGES):
        return True
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


class Outlasted(Exception):
    """Raised when the store or the broker stayed out of reach until the task's deadline."""


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff: wait first seconds, then twice as long each time, up to cap."""

    first: float = 0.2
    cap: float = 5.0


def wait_out(
    call: Callable[[], T],
    *,
    what: str,
    until: float,
    backoff: Backoff = Backoff(),
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Return call(), called again after each outage until it answers or clock() passes until."""
    began, delay, failures = clock(), backoff.first, 0
    while True:
        try:
            result = call()
        except Exception as exc:
            if not is_outage(exc):
                raise
            failures += 1
            if failures == 1:
                log.warning("%s failed (%s); calling again until it answers", what, exc)
            left = until - clock()
            if left <= 0:
                waited = clock() - began
                raise Outlasted(
                    f"{what} failed for {waited:.1f} s, to the deadline: {exc}"
                ) from exc
            sleep(min(delay, left))
            delay = min(2 * delay, backoff.cap)
        else:
            if failures:
                log.warning(
                    "%s answered after %d failures in %.1f s", what, failures, clock() - began
                )
            return result


class Recorder:
    """One task's calls to the job store and the broker for a job, each waiting out outages.

    The only place a task calls the store or publishes: a change to either API is made here.
    """

    def __init__(
        self,
        store: JobStore,
        enqueue: Enqueue,
        job_id: str,
        *,
        until: float,
        max_attempts: int,
        backoff: Backoff = Backoff(),
        holder: Holder | None = None,
    ) -> None:
        self.store = store
        self.enqueue = enqueue
        self.job_id = job_id
        self.until = until
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.failed: list[tuple[int, str]] = []
        """The images this task recorded as failed, with their errors."""
        self.holder = holder
        """Who starts the task's images: this worker's node and pool process."""

    def step(
        self,
        *,
        finish: Finish | None = None,
        start: int | None = None,
        claim: int = 0,
        window: int = 1,
        claim_key: int | None = None,
        spec: bool = False,
    ) -> Step:
        """Move the job along in one change of the store (see JobStore.step)."""
        if finish is not None and finish.error:
            log.warning(
                "job %s image %d failed: %s",
                self.job_id,
                finish.index,
                finish.error,
                extra={"job_id": self.job_id, "index": finish.index, "error": finish.error},
            )
            self.failed.append((finish.index, finish.error))
        return self._wait_out(
            lambda: self.store.step(
                self.job_id,
                Move(
                    finish=finish,
                    start=start,
                    holder=self.holder,
                    max_attempts=self.max_attempts,
                    claim=claim,
                    window=window,
                    claim_key=claim_key,
                    spec=spec,
                ),
            ),
            "the job store",
        )

    def read(self) -> Job | None:
        """Return the job as the store holds it (None once it is gone)."""
        return self._wait_out(lambda: self.store.get(self.job_id), "the job store")

    def publish(self, batch: range) -> None:
        """Publish one task of the job's images in batch."""
        self._wait_out(lambda: self.enqueue(self.job_id, [batch]), "the broker")

    def _wait_out(self, call: Callable[[], T], what: str) -> T:
        """Return call(), waiting out outages until this task's deadline."""
        return wait_out(
            call, what=f"{what} (job {self.job_id})", until=self.until, backoff=self.backoff
        )
