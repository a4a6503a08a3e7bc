"""The worker's heartbeat and reaper: one thread of each worker's main process.

Every ``HEARTBEAT`` seconds the thread lists this process's live pool processes (its
children), records them in the job store under the worker's node name, then reaps:
each job with a running image is asked to queue again the images whose holder is
gone (``JobStore.redeliver_lost``, atomic, so of two reapers one acts), and the tasks
it hands back are published. A pass reads the running images and the heartbeats
(``JobStore.lost_jobs``), then costs one change per job with a lost image and a
publish per redelivery: the listing and /metrics show the truth without anyone
reading a job.

A node's silence counts only once this thread has beaten without a failure for
``stale_after``: a reaper whose own store was out of reach cannot tell a gone worker
from one that could not beat either, so meanwhile it only trusts missing pool
processes. A task that could not be published is tried again at the next beat.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

from worker.liveness import HEARTBEAT, Beat
from worker.outages import Enqueue, is_outage
from worker.store import JobStore

log = logging.getLogger(__name__)


def pool_pids() -> tuple[int, ...]:
    """Return the pids of this process's live children: a prefork worker's pool processes."""
    pids = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE:
                pids.append(child.pid)
    return tuple(sorted(pids))


@dataclass(frozen=True)
class Reaped:
    """What one reaper pass found and published."""

    jobs: int
    images: int


class Heartbeat:
    """Beat and reap every interval seconds in a daemon thread, until stopped."""

    def __init__(
        self,
        store: JobStore,
        node: str,
        enqueue: Enqueue,
        *,
        stale_after: float,
        pids: Callable[[], tuple[int, ...]] = pool_pids,
        clock: Callable[[], float] = time.time,
        interval: float = HEARTBEAT,
    ) -> None:
        self.store = store
        self.node = node
        self.enqueue = enqueue
        self.stale_after = stale_after
        self.pids = pids
        self.clock = clock
        self.interval = interval
        self.beating_since: float | None = None
        """When the beats began to succeed without a failure since (None: the last failed)."""
        self._unpublished: list[tuple[str, list[range]]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="imgserve-heartbeat", daemon=True)

    def start(self) -> None:
        """Beat once at once, then every interval in the thread."""
        self._beat_logged()
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread; say no pool process of this node runs anything any more."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * self.interval)
        with contextlib.suppress(Exception):  # best effort: silence tells the same, later
            self.store.heartbeat(self.node, Beat(self.clock(), ()))

    def _run(self) -> None:
        """Beat until stopped."""
        while not self._stopping.wait(self.interval):
            self._beat_logged()

    def _beat_logged(self) -> None:
        """Beat; an error is logged, and the next beat comes all the same."""
        try:
            self.beat()
        except Exception:
            log.exception("the heartbeat of %s failed; it beats again", self.node)

    def beat(self) -> Reaped | None:
        """Record this node's live pool processes, then reap; None if the store is out of reach."""
        at = self.clock()  # before listing: a process forked after it started after `at`
        try:
            self.store.heartbeat(self.node, Beat(at, self.pids()))
        except Exception as exc:
            if not is_outage(exc):
                raise
            if self.beating_since is not None:
                log.warning("the heartbeat of %s failed (%s): beating again", self.node, exc)
            self.beating_since = None
            return None
        if self.beating_since is None:
            self.beating_since = at
        return self.reap(silence=at - self.beating_since >= self.stale_after)

    def reap(self, *, silence: bool) -> Reaped | None:
        """Queue again and publish the images whose holder is gone; None if out of reach."""
        try:
            for job_id in self.store.lost_jobs(silence=silence):
                tasks = self.store.redeliver_lost(job_id, silence=silence)
                if tasks:
                    self._unpublished.append((job_id, tasks))
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("the reaper of %s could not read the store: %s", self.node, exc)
        return self._publish()

    def _publish(self) -> Reaped | None:
        """Publish the redelivered tasks not published yet (those that fail wait a beat)."""
        jobs = images = 0
        while self._unpublished:
            job_id, tasks = self._unpublished[0]
            try:
                self.enqueue(job_id, tasks)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                log.warning("the reaper of %s could not publish job %s: %s", self.node, job_id, exc)
                return None
            self._unpublished.pop(0)
            jobs, images = jobs + 1, images + sum(len(task) for task in tasks)
            log.warning("redelivered job %s images %s: their worker is gone", job_id,
                        ", ".join(f"{t.start}-{t.stop - 1}" for t in tasks))  # fmt: skip
        return Reaped(jobs, images)
