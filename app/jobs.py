"""The job resource: submit, read (with long-poll), cancel and list jobs."""

from __future__ import annotations

import json
import math
from typing import Any

from flask import Blueprint, request, url_for
from flask.typing import ResponseReturnValue

from app import job_service
from app.errors import InvalidQuery, MalformedRequest, UnsupportedMediaType
from app.services import services

bp = Blueprint("jobs", __name__)


@bp.post("/jobs")
def submit_job() -> ResponseReturnValue:
    """Validate and enqueue a job; answer 202 with its resource."""
    job = job_service.submit_job(services(), read_json_body())
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


def read_json_body() -> Any:
    """Return the request's JSON body, or raise a 415 or 400 that says what is wrong."""
    if not request.is_json:
        raise UnsupportedMediaType(
            f"send the job as application/json, not {request.mimetype or 'no content type'}"
        )
    raw = request.get_data(cache=False)
    try:
        return json.loads(raw, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise MalformedRequest("the body is not valid JSON: it is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedRequest(f"the body is not valid JSON: {exc}") from None


def _reject_constant(name: str) -> Any:
    """Refuse NaN and Infinity, which JSON does not have."""
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    """Parse a JSON number, refusing ones too large for a float."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is too large")
    return value


def query_number(
    name: str, *, default: float, low: float = 0, high: float, whole: bool = False
) -> float:
    """Return a numeric query parameter within [low, high], or raise a 422 naming it."""
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw) if whole else float(raw)
        ok = math.isfinite(value) and low <= value <= high
    except ValueError:
        ok = False
    if not ok:
        kind = "a whole number" if whole else "a number"
        raise InvalidQuery.of(name, f"{name} must be {kind} from {low:g} to {high:g}, not {raw!r}")
    return value
