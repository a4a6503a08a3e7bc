"""The one task: process images ``index`` .. ``index + count - 1`` of job ``job_id``, then
enqueue the job's next task.

Tasks take references, never pixels. The work itself is ``handle_images``, a plain
function of a store and settings, so it is tested without Celery. Each job keeps
at most ``IMGSERVE_JOB_WINDOW`` tasks in the queue and each finished task enqueues
the job's next one at the back, so jobs take turns: a small job never waits for a
large batch to drain. A task is one image, except that a job's cheap images are
grouped so a task runs for about ``IMGSERVE_BATCH_MS`` (a Celery task costs a few
ms of CPU around its work, as much as a small image's whole processing).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from celery.signals import celeryd_after_setup, task_failure, worker_process_init

import pipeline
from worker.celery_app import TASK_NAME, app, settings
from worker.dispatch import enqueue_images
from worker.jobs import Job, Start
from worker.memory import keep_large_allocations
from worker.paths import UnsafePath, resolve_in_root
from worker.settings import Settings
from worker.store import Finish, JobStore, Move, StoreUnavailable, open_store

log = logging.getLogger(__name__)

Enqueue = Callable[[str, list[range]], None]
Timings = list[tuple[str, float]]
T = TypeVar("T")

MAX_BATCH = 32
"""Images one task may take at most, however cheap they are."""


def handle_images(
    store: JobStore,
    settings: Settings,
    job_id: str,
    batch: range,
    enqueue: Enqueue,
    *,
    share: int | None = None,
) -> list[Start]:
    """Run a task's images in turn, record each, then enqueue the job's next task.

    Each image is started and finished in the store on its own, so a task that dies
    halfway is redelivered and redoes only the images it had not finished. One store
    round trip an image: finishing one image starts the next, finishing the last
    claims the job's next task: as many images as fit in IMGSERVE_BATCH_MS, and at
    most 1/share of those left (guided scheduling: share is how many processes may
    work on the job, the job window at most; batches shrink toward the job's end so
    that its processes finish together).
    """
    share = share or settings.job_window
    decisions: list[Start] = []
    seconds: list[float] = []
    began = time.perf_counter()
    job = _SPECS.get(job_id)
    step = store.step(
        job_id, Move(start=batch.start, max_attempts=settings.max_attempts, spec=job is None)
    )
    if job is None:
        job = _remember(job_id, step.spec)
    finish = None
    rest = range(0)  # images handed to a new task, which then stands for the job's next
    index = batch.start
    try:
        for index in batch:
            decision = step.started or Start.SKIP
            decisions.append(decision)
            finish = None
            if decision == "run" and job is not None:
                started = time.perf_counter()
                error, timings = run_image(job, index, settings, retry=step.attempt > 1)
                seconds.append(time.perf_counter() - started)
                finish = Finish(index, error, timings)
                if index + 1 < batch.stop and _overran(began, error, settings):
                    rest = range(index + 1, batch.stop)
                    break
            if index + 1 < batch.stop:
                move = Move(finish=finish, start=index + 1, max_attempts=settings.max_attempts)
                step = store.step(job_id, move)
    except SoftTimeLimitExceeded:  # between two images: the next task redoes this one
        rest = range(index, batch.stop)
    claim = 0 if rest else batch_size(seconds, settings)
    step = store.step(job_id, Move(finish=finish, claim=claim, window=share))
    if rest:
        enqueue(job_id, [rest])
    if step.claimed:
        enqueue(job_id, [step.claimed])
    return decisions


HANDOFF_AFTER = 3
"""A task that has run this many times IMGSERVE_BATCH_MS hands its other images on."""


def _overran(began: float, error: str | None, settings: Settings) -> bool:
    """Return whether a task should hand its images not started to a new task.

    At the soft time limit the hard one follows soon; past HANDOFF_AFTER budgets the
    batch was sized from cheaper images than these, and time limits and the other
    jobs' turns are per task.
    """
    budget = HANDOFF_AFTER * settings.batch_ms / 1000
    return error == soft_limit_error(settings) or time.perf_counter() - began > budget


def batch_size(seconds: list[float], settings: Settings) -> int:
    """Return how many images the job's next task takes, from how long these ones took.

    A Celery task costs a few ms of CPU around its work; cheap images are grouped so
    that a task runs for about IMGSERVE_BATCH_MS, expensive ones go one per task.
    """
    if not seconds:
        return 1
    per_image = sum(seconds) / len(seconds)
    return max(1, min(MAX_BATCH, int(settings.batch_ms / 1000 / max(per_image, 1e-6))))


def soft_limit_error(settings: Settings) -> str:
    """Return the error of an image stopped at the soft time limit."""
    return f"timed out: stopped at the soft time limit of {settings.soft_time_limit} s"


_SPECS: dict[str, Job] = {}
_SPECS_KEPT = 64


def _remember(job_id: str, job: Job | None) -> Job | None:
    """Keep a job's spec in this process: it never changes, and jobs can be large."""
    if job is not None:
        _keep(_SPECS, job_id, job)
    return job


def _keep(cache: dict[str, T], job_id: str, value: T) -> None:
    """Keep a value of a job's in a per-process cache of the _SPECS_KEPT newest jobs."""
    if len(cache) >= _SPECS_KEPT:
        cache.pop(next(iter(cache)))
    cache[job_id] = value


_PARSED: dict[str, tuple[pipeline.Chain, pipeline.EncodeOptions]] = {}


def _parsed(job: Job, settings: Settings) -> tuple[pipeline.Chain, pipeline.EncodeOptions]:
    """Return a job's chain and encode options, parsed once per process like its spec."""
    parsed = _PARSED.get(job.id)
    if parsed is None:
        chain = pipeline.parse_operations(job.operations, limits=settings.limits)
        parsed = chain, pipeline.parse_encode_options(job.encode)
        _keep(_PARSED, job.id, parsed)
    return parsed


def enqueue_next(store: JobStore, settings: Settings, job_id: str, enqueue: Enqueue) -> None:
    """Keep the job's window full: enqueue its next task, if any, at the back of the queue."""
    following = store.step(job_id, Move(claim=1, window=settings.job_window)).claimed
    if following:
        enqueue(job_id, [following])


def run_image(
    job: Job, index: int, settings: Settings, *, retry: bool = False
) -> tuple[str | None, list[tuple[str, float]]]:
    """Process one image; return its error (None on success) and each step's time.

    retry: an earlier attempt of this image may have been killed halfway through its write.
    """
    image = job.images[index]
    timings: Timings = []
    try:
        source = _resolve(settings, image.input, "input")
        target = _resolve(settings, image.output, "output")
        chain, encode = _parsed(job, settings)
        pipeline.process_image(
            source,
            target,
            chain,
            encode=encode,
            limits=settings.limits,
            on_step=lambda op, seconds: timings.append((op, seconds)),
            retry=retry,
        )
    except pipeline.PipelineError as exc:
        return exc.detail, timings
    except SoftTimeLimitExceeded:
        return soft_limit_error(settings), timings
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


def _enqueue(job_id: str, batches: list[range]) -> None:
    """Enqueue tasks on this worker's broker."""
    enqueue_images(app, job_id, batches)


@task_failure.connect
def _record_hard_time_limit(
    sender: Any = None, exception: BaseException | None = None, args: Any = None, **_: object
) -> None:
    """Fail the image whose process the hard time limit killed (reported in the main process).

    Its task's images before it are finished; those after it go to a new task.
    """
    if getattr(sender, "name", None) != TASK_NAME or not isinstance(exception, TimeLimitExceeded):
        return
    job_id, batch = _task_images(*args)
    error = f"timed out: stopped at the hard time limit of {settings.hard_time_limit} s"
    store = _store()
    for index in batch:
        store.step(job_id, Move(finish=Finish(index, error)))  # only the running one
    job = store.get(job_id)
    rest = [n for n in batch if job is not None and job.images[n].state == "queued"]
    if rest:  # the new task stands for the job's next: the window keeps its size
        _enqueue(job_id, [range(rest[0], rest[-1] + 1)])
    else:
        enqueue_next(store, settings, job_id, _enqueue)


def _task_images(job_id: str, index: int, count: int = 1) -> tuple[str, range]:
    """Return a task's job and its range of images from the task's arguments."""
    return job_id, range(index, index + count)


_pool = {"size": settings.concurrency}


@celeryd_after_setup.connect
def _note_pool_size(sender: Any = None, instance: Any = None, **_: object) -> None:
    """Remember this worker's pool size (before the pool starts: its processes inherit it)."""
    size = getattr(instance, "concurrency", None)
    if isinstance(size, int) and size > 0:
        _pool["size"] = size


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
def process_image(job_id: str, index: int, count: int = 1) -> list[Start]:
    """Process image index of job job_id, and the count - 1 images after it."""
    started = time.perf_counter()
    batch = range(index, index + count)
    share = min(settings.job_window, _pool["size"])
    decisions = handle_images(_store(), settings, job_id, batch, _enqueue, share=share)
    which = f"image {index}" if count == 1 else f"images {index}-{batch[-1]}"
    log.info(
        "job %s %s: %s in %.3f s",
        job_id,
        which,
        ", ".join(decisions),
        time.perf_counter() - started,
    )
    return decisions
