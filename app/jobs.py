"""The job resource: submit, read (with long-poll), cancel and list jobs.

A long-poll (``?wait=``) holds a request thread while it waits, so the app holds at most
``MAX_WAITS`` of them at once (create_app sizes it from the server's threads, leaving the
rest for every other request); one more is a 429 with Retry-After.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from flask import Blueprint, current_app, g, url_for
from flask.typing import ResponseReturnValue

from app.backends import Backends, backends
from app.errors import InvalidJob, JobNotFound, OverQuota, ServiceUnavailable, TooManyWaits
from app.request_parsing import query_number, read_json_body
from app.validation import JobProblems, pointer, validate_job
from pipeline import Problem
from worker.job_queue import SubmitFailed
from worker.jobs import ImageRecord, Job, new_job_id
from worker.settings import Settings
from worker.store import InputInUse, OutputsBusy, StoreUnavailable, TooManyActive

MAX_WAIT_SECONDS = 30.0
PROGRESS_INTERVAL = 0.25
"""Seconds from a long-poll's request to its earliest answer about an unfinished job."""

ACTIVE_RETRY_SECONDS = 5
"""Retry-After of a key at its active-jobs limit: a job takes seconds at least to finish."""

T = TypeVar("T")

bp = Blueprint("jobs", __name__)


@bp.post("/jobs")
def submit_job() -> ResponseReturnValue:
    """Validate and enqueue a job; answer 202 with its resource (?wait: once it finished)."""
    wait = query_number("wait", default=0.0, high=MAX_WAIT_SECONDS)
    found = backends()
    if g.owner is not None:  # before validation, which reads every input's header
        _admit(found, g.owner)
    job = new_job(read_json_body(), found.settings)
    with waiting(wait):
        job = submit(found, job, wait=wait)
    return job.to_json(), 202, {"Location": url_for("jobs.get_job", job_id=job.id)}


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> ResponseReturnValue:
    """Answer a job; with ?wait=SECONDS, once it changes or finishes."""
    wait = query_number("wait", default=0.0, high=MAX_WAIT_SECONDS)
    found = backends()
    with waiting(wait):
        if wait > 0:  # only once the job is known to be the caller's
            _existing(job_id, _answering(lambda: found.store.get(job_id)))
            _answering(lambda: _wait_for_change(found, job_id, wait))
    return _existing(job_id, _answering(lambda: found.store.get(job_id))).to_json()


@bp.delete("/jobs/<job_id>")
def cancel_job(job_id: str) -> ResponseReturnValue:
    """Cancel a job's images that have not started; answer the job."""
    store = backends().store
    _existing(job_id, _answering(lambda: store.get(job_id)))  # another key's job: untouched
    return _existing(job_id, _answering(lambda: store.cancel(job_id))).to_json()


@bp.get("/jobs")
def list_jobs() -> ResponseReturnValue:
    """Answer a page of recent jobs, newest first."""
    limit = int(query_number("limit", default=20, low=1, high=100, whole=True))
    offset = int(query_number("offset", default=0, high=1_000_000, whole=True))
    store = backends().store
    jobs = _answering(lambda: store.list_jobs(limit=limit, offset=offset, owner=g.owner))
    more = len(jobs) == limit
    return {
        "jobs": [summary(job.to_json()) for job in jobs],
        "next": url_for("jobs.list_jobs", limit=limit, offset=offset + limit) if more else None,
    }


def summary(job: dict[str, Any]) -> dict[str, Any]:
    """Return the listing's short form of a job resource."""
    fields = ("id", "state", "progress", "created_at", "finished_at")
    return {**{k: job[k] for k in fields}, "href": url_for("jobs.get_job", job_id=job["id"])}


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
        owner=g.owner,
        overwrite=valid.overwrite,
    )


def submit(found: Backends, job: Job, *, wait: float = 0.0) -> Job:
    """Store and enqueue a new job, or answer 503; with wait, once it finished or after wait.

    A wait follows the job from before it exists: it then learns of every change without
    reading the job first.
    """
    with found.store.following(job.id) if wait > 0 else contextlib.nullcontext():
        try:
            found.queue.submit(job)
        except (OutputsBusy, InputInUse) as exc:  # one writer per output, none over an input
            does = "also written by" if isinstance(exc, OutputsBusy) else "the input of"
            detail = f"output {exc.output!r} is {does} job {exc.other_job}, which is "
            where = pointer("images", exc.index, "output")
            raise InvalidJob.of([Problem(where, detail + "queued or running")]) from None
        except TooManyActive as exc:
            raise OverQuota(
                f"key {exc.owner!r} has {exc.limit} queued or running jobs, as many as "
                "IMGSERVE_MAX_ACTIVE_JOBS allows; submit again once one has finished",
                retry_after=ACTIVE_RETRY_SECONDS,
            ) from None
        except SubmitFailed as exc:
            if not exc.may_exist:
                raise ServiceUnavailable(exc.detail) from None
            where = url_for("jobs.get_job", job_id=job.id)
            raise ServiceUnavailable(
                f"job {job.id} may exist (GET {where} tells): {exc.detail}"
            ) from None
        if wait > 0:
            return _finished_or_as_is(found, job, wait)
    return job


def _admit(found: Backends, owner: str) -> None:
    """Take a submission from owner's token bucket, or answer 429 saying when to try again."""
    rate, burst = found.settings.rate
    wait = _answering(lambda: found.store.admit(owner, rate=rate, burst=burst))
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise OverQuota(
            f"key {owner!r} submits faster than IMGSERVE_SUBMIT_RATE "
            f"({found.settings.submit_rate}) allows; submit again in {seconds} s",
            retry_after=seconds,
        )


def _finished_or_as_is(found: Backends, job: Job, wait: float) -> Job:
    """Wait for a new job to finish; a store that stops answering meanwhile is no 503.

    The job exists by then: a 503 would invite the client to submit it again.
    """
    try:
        found.store.wait(job.id, version=job.version, timeout=wait, coalesce=wait)
        return found.store.get(job.id) or job
    except StoreUnavailable:
        return job


def _wait_for_change(found: Backends, job_id: str, wait: float) -> None:
    """Wait for the job to change, unless it is missing or finished.

    A change that leaves the job unfinished answers PROGRESS_INTERVAL after the request at
    the earliest (changes in between join it), so a client in a long-poll loop reads a busy
    job a few times a second, not once per image; a finished job answers at once.
    """
    seen = found.store.peek(job_id)
    if seen is not None and not seen.finished:
        found.store.wait(job_id, version=seen.version, timeout=wait, coalesce=PROGRESS_INTERVAL)


@contextlib.contextmanager
def waiting(wait: float) -> Iterator[None]:
    """Hold one of the app's long-poll slots for a wait; a 429 when every one is taken."""
    if wait <= 0:
        yield
        return
    slots: threading.BoundedSemaphore = current_app.extensions["imgserve.waits"]
    if not slots.acquire(blocking=False):
        most = current_app.config["MAX_WAITS"]
        raise TooManyWaits(
            f"this server already holds {most} long-polls, as many as it may; "
            "ask again in a second, or without wait"
        )
    try:
        yield
    finally:
        slots.release()


def wait_slots(threads: int) -> int:
    """Return how many long-polls a server with threads request threads may hold.

    A quarter of the threads (at least 2) stay free for every other request.
    """
    return max(1, threads - max(2, threads // 4))


def _existing(job_id: str, job: Job | None) -> Job:
    """Return the job, or raise a 404 for a job the store does not have or another key's.

    Another key's job gets the very answer of an unknown id: nothing says it exists.
    """
    if job is None or (g.owner is not None and job.owner != g.owner):
        raise JobNotFound(f"no job has the id {job_id!r} (jobs expire after a while)")
    return job


def _answering(call: Callable[[], T]) -> T:
    """Run a store call, turning StoreUnavailable into a 503."""
    try:
        return call()
    except StoreUnavailable as exc:
        raise ServiceUnavailable(f"the job store does not answer: {exc}") from None
