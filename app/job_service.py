"""What the job views do: submit, find (with long-poll), cancel and list jobs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, TypeVar

from app.errors import InvalidJob, JobNotFound, ServiceUnavailable
from app.services import Services
from app.validation import JobProblems, pointer, validate_job
from pipeline import Problem
from worker.jobs import ImageRecord, Job, new_job_id
from worker.settings import Settings
from worker.store import OutputsBusy, StoreTimedOut, StoreUnavailable

MAX_WAIT_SECONDS = 30.0
PROGRESS_INTERVAL = 0.25
"""Seconds from a long-poll's request to its earliest answer about an unfinished job."""

T = TypeVar("T")


def submit_job(services: Services, payload: Any, *, wait: float = 0.0) -> Job:
    """Validate a job, store it and enqueue its first window of images, one task each.

    The job is withdrawn if its tasks cannot be sent.

    Nothing is known yet of how long its images take; the workers batch the rest.
    With wait, answer once the job finished, or after wait seconds, as it then is.
    """
    job = new_job(payload, services.settings)
    # A wait follows the job from before it exists: it then learns of every change
    # without reading the job first.
    first = [range(n, n + 1) for n in job.first_window(services.settings.job_window)]
    with services.store.following(job.id) if wait > 0 else contextlib.nullcontext():
        _store_then_enqueue(services, job, first)
        if wait > 0:
            return _finished_or_as_is(services, job, wait)
    return job


def new_job(payload: Any, settings: Settings) -> Job:
    """Validate a job's JSON (InvalidJob names every problem); return the new job."""
    try:
        valid = validate_job(payload, settings)
    except JobProblems as exc:
        raise InvalidJob.of(exc.problems) from None
    return Job(
        id=new_job_id(),
        operations=valid.chain.to_json(),
        encode=valid.encode.to_json(),
        images=[ImageRecord(i.input, i.output, i.outputs) for i in valid.images],
        created_at=time.time(),
    )


def _store_then_enqueue(services: Services, job: Job, first: list[range]) -> None:
    """Store the job, then enqueue its first tasks; withdraw it if they cannot be."""
    try:
        services.store.create(job, window=services.settings.job_window)
    except OutputsBusy as exc:  # one writer per output
        detail = f"output {exc.output!r} is also written by job {exc.other_job}, which is "
        where = pointer("images", exc.index, "output")
        raise InvalidJob.of([Problem(where, detail + "queued or running")]) from None
    except StoreTimedOut as exc:
        _withdraw(services, job.id)  # if it was stored, no task of it was sent
        raise ServiceUnavailable(
            f"the job store did not answer in time; job {job.id} was withdrawn if it was "
            f"stored, and none of it runs: {exc}"
        ) from None
    except StoreUnavailable as exc:
        raise ServiceUnavailable(
            f"the job store does not answer, nothing was stored: {exc}"
        ) from None
    try:
        services.enqueue(job.id, first)
    except Exception as exc:
        _withdraw(services, job.id)
        raise ServiceUnavailable(
            f"the queue does not answer, the job was withdrawn: {exc}"
        ) from None


def _finished_or_as_is(services: Services, job: Job, wait: float) -> Job:
    """Wait for a new job to finish; a store that stops answering meanwhile is no 503.

    The job exists by then: a 503 would invite the client to submit it again.
    """
    try:
        services.store.wait(job.id, version=job.version, timeout=wait, coalesce=wait)
        return services.store.get(job.id) or job
    except StoreUnavailable:
        return job


def _withdraw(services: Services, job_id: str) -> None:
    """Cancel a job that could not be enqueued, if the store still answers."""
    with contextlib.suppress(StoreUnavailable):
        services.store.cancel(job_id)


def find_job(services: Services, job_id: str, *, wait: float = 0.0) -> Job:
    """Return a job; with wait, once it finishes or changes, or after wait seconds.

    A change that leaves the job unfinished answers PROGRESS_INTERVAL after the
    request at the earliest (changes in between join it), so a client in a long-poll
    loop reads a busy job a few times a second, not once per image; a finished job
    answers at once.
    """
    if wait > 0:
        _unavailable_as_503(lambda: _wait_for_change(services, job_id, wait))
    return _get(services, job_id)


def _wait_for_change(services: Services, job_id: str, wait: float) -> None:
    """Wait for the job to change, unless it is missing, finished or due for the reaper."""
    seen = services.store.peek(job_id)
    if (
        seen is None
        or seen.finished
        or seen.changed_at < time.time() - services.settings.stale_after
    ):
        return
    services.store.wait(job_id, version=seen.version, timeout=wait, coalesce=PROGRESS_INTERVAL)


def cancel_job(services: Services, job_id: str) -> Job:
    """Cancel a job's images that have not started; return the job."""
    job = _unavailable_as_503(lambda: services.store.cancel(job_id))
    if job is None:
        raise JobNotFound(f"no job has the id {job_id!r} (jobs expire after a while)")
    return job


def recent_jobs(services: Services, *, limit: int, offset: int) -> list[Job]:
    """Return recent jobs, newest first."""
    return _unavailable_as_503(lambda: services.store.list_jobs(limit=limit, offset=offset))


def _get(services: Services, job_id: str) -> Job:
    """Read a job (the store fails the images whose worker went silent first)."""
    job = _unavailable_as_503(lambda: services.store.get(job_id))
    if job is None:
        raise JobNotFound(f"no job has the id {job_id!r} (jobs expire after a while)")
    return job


def _unavailable_as_503(call: Callable[[], T]) -> T:
    """Run a store call, turning StoreUnavailable into a 503."""
    try:
        return call()
    except StoreUnavailable as exc:
        raise ServiceUnavailable(f"the job store does not answer: {exc}") from None
