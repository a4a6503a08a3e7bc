"""The one task: process images ``index`` .. ``index + count - 1`` of job ``job_id``, then
publish the job's next task; and the worker signals it needs.

Tasks take references, never pixels. The work is ``worker.batches.run_batch``, a plain
function tested without Celery; the task only gives it this process's store and broker
(a ``Recorder`` that waits out their outages, and starts images as this node's pool
process) and says how it ended. Late acks: the message is acknowledged once the task
returns, after its images are recorded and the job's next task is published; a task
that could not reach Redis before its deadline puts its message back in the queue
(``Reject(requeue=True)``), where the store's records make the redelivery skip what
was finished. The main process beats and reaps (``worker.heartbeat``).
"""

from __future__ import annotations

import logging
import os
import time
from functools import lru_cache
from typing import Any

from celery.exceptions import Reject, SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import (
    celeryd_after_setup,
    task_failure,
    worker_process_init,
    worker_ready,
    worker_shutdown,
)

import pipeline
from worker.batches import finish_killed, run_batch
from worker.celery_app import TASK_NAME, app, settings
from worker.heartbeat import Heartbeat
from worker.job_queue import publish
from worker.jobs import Start
from worker.liveness import Holder
from worker.memory import keep_large_allocations
from worker.outages import Outlasted, Recorder
from worker.scheduling import guided_share
from worker.store import JobStore, open_store

log = logging.getLogger(__name__)

OUTAGE_SHARE = 0.9
"""A task waits out an outage until this share of its soft time limit has passed."""

KILLED_WAIT = 10.0
"""Seconds the main process waits out an outage to record an image the hard limit killed."""

_pool = {"size": settings.concurrency}
_heartbeats: list[Heartbeat] = []


@lru_cache(maxsize=1)
def _store() -> JobStore:
    """Open this process's store (once per process, after the fork)."""
    return open_store(settings)


def _enqueue(job_id: str, batches: list[range]) -> None:
    """Enqueue tasks on this worker's broker (with Celery's publish retry)."""
    publish(app, job_id, batches, retry=True)


def _recorder(job_id: str, *, wait: float, holder: Holder | None = None) -> Recorder:
    """Return a recorder of job_id's changes on this process's store and broker."""
    until = time.monotonic() + wait
    return Recorder(
        _store(), _enqueue, job_id, until=until, max_attempts=settings.max_attempts, holder=holder
    )


class ImageFailed(Exception):
    """Raised when a task recorded an image as failed: Celery and Flower show it as a failure.

    Declared in the task's throws, so Celery logs it in one line, without a traceback; the
    message is acknowledged as usual (the failure is recorded, nothing is retried).
    """


@app.task(name=TASK_NAME, throws=(ImageFailed,))
def process_image(job_id: str, index: int, count: int = 1) -> list[Start]:
    """Process image index of job job_id, and the count - 1 images after it."""
    started = time.perf_counter()
    batch = range(index, index + count)
    node = process_image.request.hostname
    holder = Holder(node, os.getpid(), batch.stop) if node else None
    recorder = _recorder(job_id, wait=OUTAGE_SHARE * settings.soft_time_limit, holder=holder)
    try:
        decisions = run_batch(
            recorder, settings, batch, share=guided_share(settings, _pool["size"])
        )
    except (Outlasted, SoftTimeLimitExceeded) as exc:  # the redelivery skips what is recorded
        log.warning("job %s images %d-%d go back to the queue: %s", job_id, index, batch[-1], exc)
        raise Reject(str(exc), requeue=True) from exc
    which = f"image {index}" if count == 1 else f"images {index}-{batch[-1]}"
    log.info(
        "job %s %s: %s in %.3f s",
        job_id,
        which,
        ", ".join(decisions),
        time.perf_counter() - started,
    )
    if recorder.failed:
        failures = "; ".join(f"image {n}: {error}" for n, error in recorder.failed)
        raise ImageFailed(f"job {job_id}: {failures}")
    return decisions


@task_failure.connect
def _record_hard_time_limit(
    sender: Any = None, exception: BaseException | None = None, args: Any = None, **_: object
) -> None:
    """Fail the image whose process the hard time limit killed (reported in the main process)."""
    if getattr(sender, "name", None) != TASK_NAME or not isinstance(exception, TimeLimitExceeded):
        return
    job_id, batch = _task_images(*args)
    error = f"timed out: stopped at the hard time limit of {settings.hard_time_limit} s"
    finish_killed(_recorder(job_id, wait=KILLED_WAIT), batch, error, settings.job_window)


def _task_images(job_id: str, index: int, count: int = 1) -> tuple[str, range]:
    """Return a task's job and its range of images from the task's arguments."""
    return job_id, range(index, index + count)


@celeryd_after_setup.connect
def _note_pool_size(sender: Any = None, instance: Any = None, **_: object) -> None:
    """Remember this worker's pool size (before the pool starts: its processes inherit it)."""
    size = getattr(instance, "concurrency", None)
    if isinstance(size, int) and size > 0:
        _pool["size"] = size


@worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: object) -> None:
    """Start the main process's heartbeat and reaper, under the worker's node name."""
    heartbeat = Heartbeat(_store(), sender.hostname, _enqueue, stale_after=settings.stale_after)
    heartbeat.start()
    _heartbeats.append(heartbeat)


@worker_shutdown.connect
def _stop_heartbeat(**_: object) -> None:
    """Stop the heartbeat once the pool has stopped (a warm shutdown finished its tasks)."""
    while _heartbeats:
        _heartbeats.pop().stop()


@worker_process_init.connect
def _init_process(**_: object) -> None:
    """Give each worker process one OpenCV thread (workers parallelise across processes)."""
    pipeline.configure_opencv(1)
    keep_large_allocations()
    _store.cache_clear()
