"""The one task: process image ``index`` of job ``job_id``, then enqueue the job's next.

Tasks take references, never pixels. The work itself is ``handle_image``, a plain
function of a store and settings, so it is tested without Celery. Each job keeps
at most ``IMGSERVE_JOB_WINDOW`` images in the queue and each finished image
enqueues the job's next one at the back, so jobs take turns: a small job never
waits for a large batch to drain.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import task_failure, worker_process_init

import pipeline
from worker.celery_app import TASK_NAME, app, settings
from worker.dispatch import enqueue_images
from worker.jobs import Job
from worker.memory import keep_large_allocations
from worker.paths import UnsafePath, resolve_in_root
from worker.settings import Settings
from worker.store import JobStore, StoreUnavailable, open_store

log = logging.getLogger(__name__)

Enqueue = Callable[[str, list[int]], None]
Timings = list[tuple[str, float]]


def handle_image(
    store: JobStore, settings: Settings, job_id: str, index: int, enqueue: Enqueue
) -> str:
    """Run one image of a job if it should run, record the outcome, enqueue the next."""
    decision = store.start_image(job_id, index, max_attempts=settings.max_attempts)
    if decision == "run":
        job = _spec(store, job_id)
        if job is None:  # expired while queued
            return "skip"
        error, timings = run_image(job, index, settings)
        store.finish_image(job_id, index, error=error, timings=timings)
    enqueue_next(store, job_id, enqueue)
    return decision


_SPECS: dict[str, Job] = {}
_SPECS_KEPT = 64


def _spec(store: JobStore, job_id: str) -> Job | None:
    """Return a job's spec, read once per process: it never changes, and jobs can be large."""
    job = _SPECS.get(job_id)
    if job is None:
        job = store.spec(job_id)
        if job is not None:
            if len(_SPECS) >= _SPECS_KEPT:
                _SPECS.pop(next(iter(_SPECS)))
            _SPECS[job_id] = job
    return job


def enqueue_next(store: JobStore, job_id: str, enqueue: Enqueue) -> None:
    """Keep the job's window full: enqueue its next image, if any, at the back of the queue."""
    following = store.claim_next(job_id)
    if following is not None:
        enqueue(job_id, [following])


def run_image(
    job: Job, index: int, settings: Settings
) -> tuple[str | None, list[tuple[str, float]]]:
    """Process one image; return its error (None on success) and each step's time."""
    image = job.images[index]
    timings: Timings = []
    try:
        source = _resolve(settings, image.input, "input")
        target = _resolve(settings, image.output, "output")
        chain = pipeline.parse_operations(job.operations, limits=settings.limits)
        encode = pipeline.parse_encode_options(job.encode)
        pipeline.process_image(
            source,
            target,
            chain,
            encode=encode,
            limits=settings.limits,
            on_step=lambda op, seconds: timings.append((op, seconds)),
        )
    except pipeline.PipelineError as exc:
        return exc.detail, timings
    except SoftTimeLimitExceeded:
        return f"timed out: stopped at the soft time limit of {settings.soft_time_limit} s", timings
    except Exception as exc:
        log.exception("image %d of job %s failed unexpectedly", index, job.id)
        return f"internal error: {type(exc).__name__}", timings
    return None, timings


def _resolve(settings: Settings, path: str, role: str) -> Any:
    """Resolve a request path inside its root, as a pipeline error if it is not."""
    try:
        return resolve_in_root(settings.inputs if role == "input" else settings.outputs, path)
    except UnsafePath as exc:
        raise pipeline.PipelineError(f"the {role} path {exc}") from None


@lru_cache(maxsize=1)
def _store() -> JobStore:
    """Open this process's store (once per process, after the fork)."""
    return open_store(settings)


def _enqueue(job_id: str, indices: list[int]) -> None:
    """Enqueue images on this worker's broker."""
    enqueue_images(app, job_id, indices)


@task_failure.connect
def _record_hard_time_limit(
    sender: Any = None, exception: BaseException | None = None, args: Any = None, **_: object
) -> None:
    """Fail an image whose process the hard time limit killed (reported in the main process)."""
    if getattr(sender, "name", None) != TASK_NAME or not isinstance(exception, TimeLimitExceeded):
        return
    job_id, index = args
    error = f"timed out: stopped at the hard time limit of {settings.hard_time_limit} s"
    _store().finish_image(job_id, index, error=error, timings=[])
    enqueue_next(_store(), job_id, _enqueue)


@worker_process_init.connect
def _init_process(**_: object) -> None:
    """Give each worker process one OpenCV thread (workers parallelise across processes)."""
    pipeline.configure_opencv(1)
    keep_large_allocations()
    _store.cache_clear()


@app.task(
    name=TASK_NAME,
    autoretry_for=(StoreUnavailable,),
    retry_backoff=True,
    max_retries=5,
)
def process_image(job_id: str, index: int) -> str:
    """Process image index of job job_id."""
    started = time.perf_counter()
    decision = handle_image(_store(), settings, job_id, index, _enqueue)
    log.info(
        "job %s image %d: %s in %.3f s", job_id, index, decision, time.perf_counter() - started
    )
    return decision
