"""The job resource: submit, read (with long-poll), cancel and list jobs."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, url_for
from flask.typing import ResponseReturnValue

from app import job_service
from app.requests import query_number, read_json_body
from app.services import services

bp = Blueprint("jobs", __name__)


@bp.post("/jobs")
def submit_job() -> ResponseReturnValue:
    """Validate and enqueue a job; answer 202 with its resource (?wait: once it finished)."""
    wait = query_number("wait", default=0.0, high=job_service.MAX_WAIT_SECONDS)
    job = job_service.submit_job(services(), read_json_body(), wait=wait)
    return job.to_json(), 202, {"Location": url_for("jobs.get_job", job_id=job.id)}


@bp.get("/jobs/<job_id>")
def get_job(job_id: str) -> ResponseReturnValue:
    """Answer a job; with ?wait=SECONDS, once it changes or finishes."""
    wait = query_number("wait", default=0.0, high=job_service.MAX_WAIT_SECONDS)
    return job_service.find_job(services(), job_id, wait=wait).to_json()


@bp.delete("/jobs/<job_id>")
def cancel_job(job_id: str) -> ResponseReturnValue:
    """Cancel a job's images that have not started; answer the job."""
    return job_service.cancel_job(services(), job_id).to_json()


@bp.get("/jobs")
def list_jobs() -> ResponseReturnValue:
    """Answer a page of recent jobs, newest first."""
    limit = int(query_number("limit", default=20, low=1, high=100, whole=True))
    offset = int(query_number("offset", default=0, high=1_000_000, whole=True))
    jobs = job_service.recent_jobs(services(), limit=limit, offset=offset)
    more = len(jobs) == limit
    return {
        "jobs": [summary(job.to_json()) for job in jobs],
        "next": url_for("jobs.list_jobs", limit=limit, offset=offset + limit) if more else None,
    }


def summary(job: dict[str, Any]) -> dict[str, Any]:
    """Return the listing's short form of a job resource."""
    fields = ("id", "state", "progress", "created_at", "finished_at")
    return {**{k: job[k] for k in fields}, "href": url_for("jobs.get_job", job_id=job["id"])}
