"""One access-log line per request, and the request metrics, from Flask's request hooks.

A line names the method, the path, the status, the time to answer in ms and the job's id
where the request has one (its path's, or the new job's of a POST). The query string is
left out (it could carry a token) and no header is ever logged; the path is
percent-encoded, so that no request can write a line of its own.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from flask import Flask, Response, request

from app.http_metrics import HttpMetrics

log = logging.getLogger("imgserve.access")

STARTED = "imgserve.started"
"""The WSGI environ key holding when a request's handling started (perf_counter)."""
SAFE = "/:@!$&'()*+,;=-._~"
"""What a path keeps unencoded: RFC 3986's path characters."""


def observe_requests(app: Flask, metrics: HttpMetrics) -> None:
    """Log and count every request the app answers, and those it is answering."""

    @app.before_request
    def start() -> None:
        request.environ[STARTED] = time.perf_counter()
        metrics.in_flight.inc()

    @app.after_request
    def answered(response: Response) -> Response:
        started = request.environ.get(STARTED)
        if started is None:
            return response
        seconds = time.perf_counter() - started
        route = request.url_rule.rule if request.url_rule is not None else None
        metrics.observe(request.method, route, response.status_code, seconds)
        log_request(request.method, request.path, response, seconds)
        return response

    @app.teardown_request
    def done(_: BaseException | None) -> None:
        if request.environ.pop(STARTED, None) is not None:
            metrics.in_flight.dec()


def log_request(method: str, path: str, response: Response, seconds: float) -> None:
    """Write the access-log line of an answered request."""
    shown = quote(path, safe=SAFE)
    job = job_id(response)
    ms = round(seconds * 1000, 1)
    fields: dict[str, object] = {
        "method": method,
        "path": shown,
        "status": response.status_code,
        "duration_ms": ms,
    }
    if job is not None:
        fields["job_id"] = job
    on_job = f" job {job}" if job else ""
    log.info("%s %s %d %.1f ms%s", method, shown, response.status_code, ms, on_job, extra=fields)


def job_id(response: Response) -> str | None:
    """Return the id of the job a request is about: its path's, or the one it created."""
    found = (request.view_args or {}).get("job_id")
    if found is None:
        location = response.headers.get("Location", "")
        found = location.rpartition("/jobs/")[2] if "/jobs/" in location else None
    return quote(str(found), safe="") if found else None
