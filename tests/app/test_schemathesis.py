"""Schemathesis against the app's own /openapi.json: no request gets a 5xx or an off-document answer.

Every documented operation gets two kinds of generated requests, sent in-process over WSGI:

- coverage: schemathesis's deterministic cases (boundary values, wrong types, missing and
  unknown members, other media types, repeated query parameters, methods the document does not
  list), valid and invalid;
- fuzzing: Hypothesis-generated cases, positive (fitting the document) and negative (breaking
  it: bodies of the wrong shape, strings where lists belong, out-of-range and non-numeric query
  values, unknown parameters), derandomized so that every run sends the same requests.

Every answer must pass CHECKS. The app fixture's RecordingQueue keeps anything from being
enqueued. The generated data is steered so that the happy paths are reached, not only 404s and
422s: half of the positive jobs get real photos as inputs and half of the positive job ids name
stored jobs (queued, running, succeeded, cancelled). Steering never makes a case break the
document, and never touches a negative case.

The long-poll would make this slow: ``wait`` may be up to 30 seconds, and for a stored job that
has not finished the API really waits that long. So every case has its ``wait`` capped at
MAX_WAIT before it is sent, but only when it is a plain number from 0 to 30 (one the API would
accept), so that a case the API should refuse is still sent as generated.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from app.backends import Backends
from tests.support import finish_image, start_image

POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE

CHECKS = [
    not_a_server_error,  # never a 5xx
    status_code_conformance,  # only documented status codes
    content_type_conformance,  # with the documented media type
    response_headers_conformance,
    response_schema_conformance,  # and a body that fits the documented schema
    negative_data_rejection,  # a request that breaks the document is refused with a 4xx
    unsupported_method,  # an undocumented method is a 405 with Allow
    allow_header_conformance,  # OPTIONS lists the documented methods
]

# Hypothesis examples per operation and generation mode. An operation without parameters
# has a single positive case and nothing to break, so it gets no negative run.
EXAMPLES: dict[str, dict[GenerationMode, int]] = {
    "POST /jobs": {POSITIVE: 250, NEGATIVE: 250},
    "GET /jobs": {POSITIVE: 80, NEGATIVE: 80},
    "GET /jobs/{job_id}": {POSITIVE: 100, NEGATIVE: 100},
    "DELETE /jobs/{job_id}": {POSITIVE: 60},
    "GET /healthz": {POSITIVE: 1},
    "GET /metrics": {POSITIVE: 1},
}

MIN_REQUESTS = 1000
MAX_WAIT = 0.01  # seconds a generated long-poll may last
PLAIN_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
PHOTOS = ("photos/cyclo1.jpg", "photos/cyclo2.jpg", "photos/cyclo3.jpg", "photos/cyclo4.jpg",
          "small.png")  # fmt: skip
FORMATS = (".jpg", ".png", ".webp", ".tif", ".bmp")
SUBMISSIONS = itertools.count()


@pytest.fixture
def job_ids(client: FlaskClient, backends: Backends) -> list[str]:
    """Return the ids of four stored jobs: queued, running, succeeded and cancelled."""
    ids = []
    for n in range(4):  # one writer an output: each job writes its own folder
        response = client.post(
            "/jobs",
            json={"images": [{"input": p, "output": f"out/{n}/{p}"} for p in PHOTOS[:2]],
                  "operations": ["resize=0.5", {"op": "blur", "kernel": 3}]},
        )  # fmt: skip
        assert response.status_code == 202, response.get_json()
        ids.append(response.get_json()["id"])
    _, running, succeeded, cancelled = ids
    store = backends.store
    assert start_image(store, running, 0, max_attempts=3) == "run"
    for index in (0, 1):
        assert start_image(store, succeeded, index, max_attempts=3) == "run"
        finish_image(store, succeeded, index, error=None, timings=[("decode", 0.01)])
    assert client.delete(f"/jobs/{cancelled}").status_code == 200
    return ids


@pytest.fixture
def schema(app: Flask) -> BaseSchema:
    """Return the app's own OpenAPI document, loaded by schemathesis over WSGI."""
    config = schemathesis.Config.from_dict(
        {"phases": {"coverage": {"generate-duplicate-query-parameters": True}}}
    )
    return schemathesis.openapi.from_wsgi("/openapi.json", app, config=config)


def operations(schema: BaseSchema) -> Iterator[APIOperation]:
    """Yield every operation of the document, failing on one schemathesis cannot read."""
    for result in schema.get_all_operations():
        yield result.ok()


def coverage_cases(schema: BaseSchema, operation: APIOperation) -> Iterator[Case]:
    """Yield schemathesis's deterministic coverage cases of an operation, valid and invalid."""
    config = schema.config.generation_for(operation=operation, phase="coverage")
    yield from schema.iter_coverage_cases(
        operation, generation_modes=list(GenerationMode), generation_config=config
    )


def steer(case: Case, pick: int | None, job_ids: list[str]) -> Case:
    """Point a positive case at real photos or a real job when pick is given; cap its wait."""
    if case.meta is None or case.meta.generation.mode is not POSITIVE:
        pick = None
    body = case.body
    if pick is not None and case.operation.label == "POST /jobs" and isinstance(body, dict):
        folder = next(SUBMISSIONS)  # one writer an output: a job never waits for another's
        for i, image in enumerate(body.get("images") or []):
            if isinstance(image, dict):
                image["input"] = PHOTOS[(pick + i) % len(PHOTOS)]
                image["output"] = f"out/{pick}/{folder}/{i}{FORMATS[(pick + i) % len(FORMATS)]}"
    if pick is not None and case.path_parameters and "job_id" in case.path_parameters:
        case.path_parameters["job_id"] = job_ids[pick % len(job_ids)]
    if case.query and "wait" in case.query:
        case.query["wait"] = capped(case.query["wait"])
    return case


def capped(wait: object) -> object:
    """Return MAX_WAIT for a wait the API would accept and that is longer; else wait as it is."""
    if isinstance(wait, str) and PLAIN_NUMBER.fullmatch(wait):
        seconds = float(wait)
    elif isinstance(wait, int | float) and not isinstance(wait, bool):
        seconds = wait
    else:
        return wait
    return MAX_WAIT if MAX_WAIT < seconds <= 30 else wait


def fuzz(
    operation: APIOperation,
    mode: GenerationMode,
    examples: int,
    job_ids: list[str],
    send: Callable[[Case], None],
) -> None:
    """Send Hypothesis-generated cases of one operation in one mode, the same ones every run."""

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @given(case=operation.as_strategy(generation_mode=mode), pick=st.none() | st.integers(0, 999))
    def run(case: Case, pick: int | None) -> None:
        send(steer(case, pick, job_ids))

    run()


@pytest.mark.timeout(120)
def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_document(
    schema: BaseSchema, job_ids: list[str]
) -> None:
    answers: Counter[tuple[str, int]] = Counter()

    def send(case: Case) -> None:
        response = case.call_and_validate(checks=CHECKS)
        answers[case.operation.label, response.status_code] += 1

    assert {operation.label for operation in operations(schema)} == set(EXAMPLES)
    for operation in operations(schema):
        for n, case in enumerate(coverage_cases(schema, operation)):
            send(steer(case, n if n % 2 == 0 else None, job_ids))
        for mode, examples in EXAMPLES[operation.label].items():
            fuzz(operation, mode, examples, job_ids, send)

    assert sum(answers.values()) >= MIN_REQUESTS, answers
    assert answers["POST /jobs", 202] >= 50, answers
    assert answers["GET /jobs/{job_id}", 200] >= 20, answers
    assert answers["DELETE /jobs/{job_id}", 200] >= 10, answers


def test_every_encode_and_number_of_images_the_document_allows_is_accepted(
    schema: BaseSchema,
) -> None:
    @settings(max_examples=60, derandomize=True, database=None, deadline=None)
    @given(case=schema["/jobs"]["POST"].as_strategy(generation_mode=POSITIVE))
    def run(case: Case) -> None:
        case.body["operations"] = ["resize=0.5"]
        response = steer(case, 0, []).call()
        assert response.status_code == 202, response.json()

    run()


def test_the_document_states_the_limits_and_headers_the_api_holds_to(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    job = document["components"]["schemas"]["JobRequest"]["properties"]
    assert (job["images"]["maxItems"], job["operations"]["maxItems"]) == (10, 32)
    encode = job["encode"]["anyOf"][0]
    assert set(encode["properties"]) == {
        "jpeg_quality", "webp_quality", "png_compression", "avif_quality", "jpeg_progressive",
        "jpeg_subsampling", "jpeg_optimize", "background", "color", "metadata",
    }  # fmt: skip
    assert encode["additionalProperties"] is False
    submit = document["paths"]["/jobs"]["post"]["responses"]
    assert submit["202"]["headers"]["Location"]["required"] is True
    assert submit["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 1}
    health = document["paths"]["/healthz"]["get"]["responses"]["200"]["content"]
    assert health == {"application/json": {"schema": {"$ref": "#/components/schemas/Health"}}}
    metrics = document["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert metrics == {"text/plain": {"schema": {"type": "string"}}}
