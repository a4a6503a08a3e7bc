"""Request and response models: they validate requests and generate /openapi.json.

The operations themselves are validated by ``pipeline.parse_operations`` (so that
every problem gets its own pointer); their schema comes from the same declarations
through ``pipeline.operation_schemas``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

import pipeline

PathString = Annotated[str, Field(min_length=1, max_length=1024)]


def _encode_schema() -> dict[str, Any]:
    """Return the JSON Schema of the encoder settings (or null), from the pipeline's params."""
    return {"anyOf": [pipeline.encode_options_schema(), {"type": "null"}]}


def _operations_schema() -> dict[str, Any]:
    """Return the JSON Schema of the operations list, from the pipeline's declarations."""
    return {
        "type": "array",
        "items": {"oneOf": pipeline.operation_schemas()},
        "examples": [["splitQuadrants=True", "resize=2", "blur=25"]],
    }


class ImageSpec(BaseModel):
    """One image of a job: where to read it and where to write its result."""

    model_config = ConfigDict(extra="forbid")

    input: PathString = Field(description="Input path, relative to IMGSERVE_ROOT.")
    output: PathString = Field(
        description="Output path; with k > 1 results, {stem}_{n}{ext} for n = 1..k."
    )


class JobRequest(BaseModel):
    """A job: images, and the chain of operations to run on each."""

    model_config = ConfigDict(extra="forbid")

    images: list[ImageSpec] = Field(min_length=1)
    operations: Annotated[list[Any], WithJsonSchema(_operations_schema())] = Field(
        description='Operations in order: "name=value" strings or {"op": name, ...} objects.'
    )
    encode: Annotated[dict[str, Any] | None, WithJsonSchema(_encode_schema())] = Field(
        default=None,
        description="Encoder settings: jpeg_quality, webp_quality, png_compression.",
    )
    overwrite: bool | None = Field(
        default=None,
        description="Whether outputs may replace existing files (default: IMGSERVE_OVERWRITE).",
    )


class Health(BaseModel):
    """What GET /healthz answers when the job store and the broker answer."""

    status: Literal["ok"]
    mode: Literal["embedded", "redis"]
    store: Literal["ok"]
    broker: Literal["ok"]


class Progress(BaseModel):
    """How far a job has come."""

    total: int
    done: int
    failed: int
    cancelled: int
    percent: float = Field(ge=0, le=100)


class ImageStatus(BaseModel):
    """Where one image of a job stands."""

    input: str
    output: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    outputs: list[str]
    error: str | None


JobStateName = Literal["queued", "running", "succeeded", "failed", "partially_failed", "cancelled"]


class JobResource(BaseModel):
    """A job as GET /jobs/{id} shows it."""

    id: str
    state: JobStateName
    progress: Progress
    operations: list[dict[str, Any]]
    encode: dict[str, Any]
    images: list[ImageStatus]
    created_at: str
    started_at: str | None
    finished_at: str | None


class JobSummary(BaseModel):
    """A job in the GET /jobs listing."""

    id: str
    state: JobStateName
    progress: Progress
    created_at: str
    finished_at: str | None
    href: str


class JobList(BaseModel):
    """A page of recent jobs, newest first."""

    jobs: list[JobSummary]
    next: str | None


class ProblemDetail(BaseModel):
    """One problem of a request: where (a JSON Pointer or a query parameter) and what."""

    pointer: str | None = None
    parameter: str | None = None
    detail: str


class ProblemDocument(BaseModel):
    """An RFC 9457 problem document, as every error is answered."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemDetail] | None = None
    checks: dict[str, str] | None = None
    """/healthz's 503: each part ("store", "broker") and "ok" or what is wrong with it."""
