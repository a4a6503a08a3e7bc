"""Every error the API answers, as an RFC 9457 problem+json, mapped in one place.

Errors::

    ApiProblem                  (status as a class attribute)
     ├── MalformedRequest       400  the body is not JSON an API could read
     ├── Unauthorized           401  no valid API key (WWW-Authenticate: Bearer)
     ├── JobNotFound            404  no job has that id (or it expired)
     ├── UnsupportedMediaType   415  the body is not application/json
     ├── InvalidJob             422  the job is well-formed JSON but wrong; lists every problem
     ├── InvalidQuery           422  a query parameter is out of range
     ├── TooManyWaits           429  every long-poll slot is taken (Retry-After)
     ├── OverQuota              429  a key has too many active jobs, or submits too fast
     └── ServiceUnavailable     503  the job store or the broker does not answer (Retry-After)

Werkzeug's own HTTP errors (404 for an unknown route, 405 with ``Allow``, 413 for a
body over IMGSERVE_MAX_BODY_BYTES) are answered in the same shape. No answer shows an
address of the service's own servers: a 503 says which part does not answer, not where it is.
"""

from __future__ import annotations

import logging
import re
from typing import Any, ClassVar

from flask import Flask, Response, current_app, json, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from pipeline import Problem

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
ADDRESS = re.compile(
    r"\b[a-z][a-z0-9+.-]*://\S+"  # a URL, with whatever credentials it holds
    r"|(?:\[[0-9A-Fa-f:.]+\]|(?:[0-9A-Fa-f]{0,4}:){2,}[0-9A-Fa-f.]*|[\w.-]+):\d{1,5}\b"
)
"""A URL, or a host (or [IPv6]) with a port, as redis-py and kombu put them in their errors."""


class ApiProblem(Exception):
    """Raised to answer a request with a problem document."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    type: ClassVar[str] = "about:blank"
    retry_after: ClassVar[int | None] = None
    """Seconds a client should wait before asking again, sent as Retry-After."""
    headers: ClassVar[dict[str, str]] = {}

    def __init__(
        self,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extensions = extensions or {}


class MalformedRequest(ApiProblem):
    """Raised when the body cannot be read as JSON."""

    status = 400
    title = "Malformed request"
    type = "urn:imgserve:problem:malformed-request"


class Unauthorized(ApiProblem):
    """Raised when a request bears no valid API key (missing and wrong alike)."""

    status = 401
    title = "Unauthorized"
    type = "urn:imgserve:problem:unauthorized"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="imgserve"'}


class JobNotFound(ApiProblem):
    """Raised when no job has the requested id."""

    status = 404
    title = "Job not found"
    type = "urn:imgserve:problem:job-not-found"


class UnsupportedMediaType(ApiProblem):
    """Raised when the body is not sent as application/json."""

    status = 415
    title = "Unsupported media type"
    type = "urn:imgserve:problem:unsupported-media-type"


class InvalidJob(ApiProblem):
    """Raised when a job is readable but wrong; its errors name every problem."""

    status = 422
    title = "Invalid job"
    type = "urn:imgserve:problem:invalid-job"

    @classmethod
    def of(cls, problems: list[Problem]) -> InvalidJob:
        """Make the error from problems, each with a JSON Pointer."""
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        return cls(
            f"the job has {count} {noun}: {problems[0].detail}"
            + (" (and more, see errors)" if count > 1 else ""),
            [{"pointer": p.pointer, "detail": p.detail} for p in problems],
        )


class InvalidQuery(ApiProblem):
    """Raised when a query parameter is not a number in its range."""

    status = 422
    title = "Invalid query parameter"
    type = "urn:imgserve:problem:invalid-query"

    @classmethod
    def of(cls, parameter: str, detail: str) -> InvalidQuery:
        """Make the error for one parameter."""
        return cls(detail, [{"parameter": parameter, "detail": detail}])


class TooManyWaits(ApiProblem):
    """Raised when a long-poll is asked for while every slot for one is taken."""

    status = 429
    title = "Too many waits"
    type = "urn:imgserve:problem:too-many-waits"
    retry_after = 1


class OverQuota(ApiProblem):
    """Raised when a key has as many active jobs as it may, or submits faster than it may."""

    status = 429
    title = "Too many jobs"
    type = "urn:imgserve:problem:over-quota"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after  # type: ignore[misc]


class ServiceUnavailable(ApiProblem):
    """Raised when the job store or the broker does not answer; addresses are left out."""

    status = 503
    title = "Service unavailable"
    type = "urn:imgserve:problem:service-unavailable"
    retry_after = 5

    def __init__(self, detail: str, checks: dict[str, str] | None = None) -> None:
        shown = {part: without_addresses(check) for part, check in (checks or {}).items()}
        super().__init__(without_addresses(detail), extensions={"checks": shown} if shown else {})


def without_addresses(text: str) -> str:
    """Return text with every URL and host:port replaced by "the server"."""
    return ADDRESS.sub("the server", text)


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    errors: list[dict[str, str]] | None = None,
    extensions: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Return a problem+json response; extensions are members beside RFC 9457's own."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
    }
    if errors is not None:
        body["errors"] = errors
    body.update(extensions or {})
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer every error as problem+json."""

    @app.errorhandler(ApiProblem)
    def api_problem(exc: ApiProblem) -> Response:
        headers = dict(exc.headers)
        if exc.retry_after:
            headers["Retry-After"] = str(exc.retry_after)
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            type_=exc.type,
            errors=exc.errors,
            extensions=exc.extensions,
            headers=headers,
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        detail = exc.description or exc.name
        headers = None
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            # Werkzeug collects the methods in a set: sorted, Allow reads the same every time.
            headers = {"Allow": ", ".join(sorted(exc.valid_methods))}
        if isinstance(exc, RequestEntityTooLarge):
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            detail = f"the body is larger than IMGSERVE_MAX_BODY_BYTES ({limit} bytes)"
        return problem_response(status, exc.name, detail, headers=headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "Internal Server Error", "an unexpected error; it is logged")
