"""The OpenAPI document, generated from the models that validate, and /docs to read it."""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from app.backends import backends
from app.models import Health, JobList, JobRequest, JobResource, ProblemDocument

bp = Blueprint("docs", __name__)

_MODELS: tuple[type[BaseModel], ...] = (
    JobRequest,
    JobResource,
    JobList,
    Health,
    ProblemDocument,
)
_REF = "#/components/schemas/{model}"

_DOCS_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>imgserve API</title>
  <link rel="stylesheet" href="https://unpkg.com/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="ui"></div>
  <script src="https://unpkg.com/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
  <script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
</body>
</html>
"""


@bp.get("/openapi.json")
def openapi_json() -> ResponseReturnValue:
    """Answer the OpenAPI 3.1 document, with this deployment's limits."""
    settings = backends().settings
    return openapi_document(max_images=settings.max_images, max_operations=settings.max_operations)


@bp.get("/docs")
def docs_page() -> ResponseReturnValue:
    """Answer the interactive API documentation (Swagger UI)."""
    return Response(_DOCS_PAGE, mimetype="text/html")


def _ref(model: type[BaseModel]) -> dict[str, str]:
    """Return a reference to a model's schema."""
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type[BaseModel], description: str) -> dict[str, Any]:
    """Return a response of a model, as application/json."""
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


def _problem(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return a problem+json response."""
    schema = {"schema": _ref(ProblemDocument)}
    response = {"description": description, "content": {"application/problem+json": schema}}
    return {**response, "headers": headers} if headers else response


def _header(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """Return a response header that is always sent."""
    return {"required": True, "schema": schema, "description": description}


def _parameter(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    """Return an OpenAPI parameter."""
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


@cache
def openapi_document(*, max_images: int, max_operations: int) -> dict[str, Any]:
    """Build the OpenAPI document from the pydantic models (once per set of limits)."""
    schemas: dict[str, Any] = {}
    for model in _MODELS:
        schema = model.model_json_schema(ref_template=_REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    job = schemas["JobRequest"]["properties"]
    job["images"]["maxItems"] = max_images
    job["operations"]["maxItems"] = max_operations
    job_id = _parameter("job_id", "path", {"type": "string", "minLength": 1}, "The job's id.")
    gone = _problem("No job has that id.")
    retry = _header({"type": "integer", "minimum": 1}, "Seconds to wait before trying again.")
    unavailable = _problem(
        "The job store or the broker does not answer.", headers={"Retry-After": retry}
    )
    busy = _problem(
        "Every long-poll slot is taken: ask again later, or without wait.",
        headers={"Retry-After": retry},
    )
    location = _header({"type": "string"}, "The job's resource, /jobs/{job_id}.")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "imgserve",
            "version": "0.1.0",
            "description": "Chains of image operations, run as Celery jobs.",
        },
        "paths": {
            "/jobs": {
                "post": {
                    "operationId": "submit_job",
                    "summary": "Validate a job and enqueue it.",
                    "parameters": [
                        _parameter(
                            "wait",
                            "query",
                            {"type": "number", "minimum": 0, "maximum": 30},
                            "Seconds to wait for the job to finish before answering (the"
                            " answer is 202 either way; its state tells).",
                        ),
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref(JobRequest)}},
                    },
                    "responses": {
                        "202": {
                            **_json(JobResource, "Accepted; Location names the job."),
                            "headers": {"Location": location},
                        },
                        "400": _problem("The body is not JSON."),
                        "413": _problem("The body is over IMGSERVE_MAX_BODY_BYTES."),
                        "415": _problem("The body is not application/json."),
                        "422": _problem("The job is not valid; errors names every problem."),
                        "429": busy,
                        "503": unavailable,
                    },
                },
                "get": {
                    "operationId": "list_jobs",
                    "summary": "List recent jobs, newest first.",
                    "parameters": [
                        _parameter(
                            "limit",
                            "query",
                            {"type": "integer", "minimum": 1, "maximum": 100},
                            "Page size.",
                        ),
                        _parameter(
                            "offset",
                            "query",
                            {"type": "integer", "minimum": 0, "maximum": 1_000_000},
                            "Jobs to skip.",
                        ),
                    ],
                    "responses": {
                        "200": _json(JobList, "A page of jobs."),
                        "422": _problem("A query parameter is out of range."),
                        "503": unavailable,
                    },
                },
            },
            "/jobs/{job_id}": {
                "get": {
                    "operationId": "get_job",
                    "summary": "Read a job; with wait, once it changes or finishes.",
                    "parameters": [
                        job_id,
                        _parameter(
                            "wait",
                            "query",
                            {"type": "number", "minimum": 0, "maximum": 30},
                            "Seconds to wait: the answer comes when the job finishes, or"
                            " once it changed but not before 0.25 s (progress is gathered).",
                        ),
                    ],
                    "responses": {
                        "200": _json(JobResource, "The job."),
                        "404": gone,
                        "422": _problem("A query parameter is out of range."),
                        "429": busy,
                        "503": unavailable,
                    },
                },
                "delete": {
                    "operationId": "cancel_job",
                    "summary": "Cancel the job's images that have not started.",
                    "parameters": [job_id],
                    "responses": {
                        "200": _json(JobResource, "The job."),
                        "404": gone,
                        "503": unavailable,
                    },
                },
            },
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "summary": "Check the job store and the broker.",
                    "responses": {
                        "200": _json(Health, "Both answer."),
                        "503": _problem(
                            "A part does not answer; checks says which.",
                            headers={"Retry-After": retry},
                        ),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics.",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "503": unavailable,
                    },
                }
            },
        },
        "components": {"schemas": schemas},
    }
