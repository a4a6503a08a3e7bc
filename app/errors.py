"""Every error the API answers, as an RFC 9457 problem+json, mapped in one place.

Errors::

    ApiProblem                  (status as a class attribute)
     ├── MalformedRequest       400  the body is not JSON an API could read
     ├── JobNotFound            404  no job has that id (or it expired)
     ├── UnsupportedMediaType   415  the body is not application/json
     ├── InvalidJob             422  the job is well-formed JSON but wrong; lists every problem
     ├── InvalidQuery           422  a query parameter is out of range
     └── ServiceUnavailable     503  the job store or the broker does not answer

Werkzeug's own HTTP errors (404 for an unknown route, 405 with ``Allow``, 413 for a
body over the limit) are answered in the same shape.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from pipeline import Problem as PipelineProblem

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ApiProblem(Exception):
    """Raised to answer a request with a problem document."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal Server Error"
    type: ClassVar[str] = "about:blank"

    def __init__(
        self,
        detail: str,
        errors: list[dict[str, str]] | None = None,
        *,
        extensions: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extensions = extensions or {}
        """Extension members of the problem document (RFC 9457), e.g. /healthz's checks."""


class MalformedRequest(ApiProblem):
    """Raised when the body cannot be read as JSON."""

    status = 400
    title = "Malformed request"
    type = "urn:imgserve:problem:malformed-request"


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
    def of(cls, problems: list[PipelineProblem]) -> InvalidJob:
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


class ServiceUnavailable(ApiProblem):
    """Raised when the job store or the broker does not answer."""

    status = 503
    title = "Service unavailable"
    type = "urn:imgserve:problem:service-unavailable"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    type_: str = "about:blank",
    errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    extensions: dict[str, Any] | None = None,
) -> Response:
    """Return a problem+json response."""
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
        **(extensions or {}),
    }
    if errors is not None:
        body["errors"] = errors
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    response.headers.update(headers or {})
    return response


def register_error_handlers(app: Flask) -> None:
    """Answer every error as problem+json."""

    @app.errorhandler(ApiProblem)
    def api_problem(exc: ApiProblem) -> Response:
        headers = {"Retry-After": "5"} if exc.status == 503 else None
        return problem_response(
            exc.status,
            exc.title,
            exc.detail,
            type_=exc.type,
            errors=exc.errors,
            headers=headers,
            extensions=exc.extensions,
        )

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        headers = None
        if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
            # Werkzeug collects the methods in a set: sorted, Allow reads the same every time.
            headers = {"Allow": ", ".join(sorted(exc.valid_methods))}
        return problem_response(status, exc.name, exc.description or exc.name, headers=headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return problem_response(500, "Internal Server Error", "an unexpected error; it is logged")
