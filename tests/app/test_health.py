"""Health, metrics and the API's own documentation."""

from __future__ import annotations

import threading
import time

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from app.backends import Backends
from tests.support import finish_image, start_image
from worker.store import StoreUnavailable

PHOTO = "photos/cyclo1.jpg"


def test_healthz_is_ok_when_store_and_broker_answer(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "mode": "embedded",
        "store": "ok",
        "broker": "ok",
        "state_disk": "ok",
    }


def test_healthz_is_a_503_problem_naming_what_does_not_answer(
    client: FlaskClient, backends: Backends
) -> None:
    def down() -> None:
        raise StoreUnavailable("connection refused")

    backends.store.ping = down  # type: ignore[method-assign]
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == "the job store does not answer (connection refused)"
    assert response.get_json()["checks"] == {
        "store": "the job store does not answer (connection refused)",
        "broker": "ok",
        "state_disk": "ok",
    }
    assert response.headers["Retry-After"] == "5"


def test_healthz_answers_in_the_order_it_lists_the_parts(client: FlaskClient) -> None:
    assert client.get("/healthz").get_data(as_text=True) == (
        '{"status":"ok","mode":"embedded","store":"ok","broker":"ok","state_disk":"ok"}\n'
    )


def test_healthz_names_every_part_down_and_hides_their_addresses(
    client: FlaskClient, backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused() -> None:
        raise StoreUnavailable("Redis does not answer: Error 111 connecting to 10.0.0.7:6379.")

    def dns() -> None:
        raise OSError("Error -2 connecting to redis:6379. Name or service not known.")

    monkeypatch.setattr(backends.store, "ping", refused)
    monkeypatch.setattr(backends.queue, "ping", dns)
    body = client.get("/healthz").get_json()
    store = (
        "the job store does not answer (Redis does not answer: Error 111 connecting to the server.)"
    )
    broker = (
        "the broker does not answer (Error -2 connecting to the server. Name or service not known.)"
    )
    assert body["detail"] == f"{store}; {broker}"
    assert body["checks"] == {"store": store, "broker": broker, "state_disk": "ok"}


def test_healthz_answers_within_two_seconds_when_a_part_never_does(
    client: FlaskClient, backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    monkeypatch.setattr(backends.queue, "ping", lambda: release.wait(30))
    monkeypatch.setattr(backends.store, "ping", lambda: release.wait(30))
    started = time.monotonic()
    response = client.get("/healthz")
    took = time.monotonic() - started
    release.set()
    assert response.status_code == 503
    assert 1.5 <= took < 2
    assert response.get_json()["checks"] == {
        "store": "the job store does not answer within 1.5 s",
        "broker": "the broker does not answer within 1.5 s",
        "state_disk": "ok",
    }


def test_metrics_are_a_503_problem_when_the_store_does_not_answer(
    client: FlaskClient, backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> None:
        raise StoreUnavailable("Redis does not answer: Error 111 connecting to 127.0.0.1:6379.")

    monkeypatch.setattr(backends.store, "stats", down)
    response = client.get("/metrics")
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["detail"] == (
        "the job store does not answer: Redis does not answer: Error 111 connecting to the server."
    )


def test_metrics_count_jobs_images_operation_times_and_queue_depth(
    client: FlaskClient, backends: Backends
) -> None:
    job = client.post(
        "/jobs", json={"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": ["blur=3"]}
    ).get_json()
    start_image(backends.store, job["id"], 0, max_attempts=3)
    finish_image(
        backends.store, job["id"], 0, error=None, timings=[("blur", 0.02), ("decode", 0.3)]
    )
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for s in family.samples
    }
    assert samples[("imgserve_jobs", (("state", "succeeded"),))] == 1
    assert samples[("imgserve_jobs", (("state", "queued"),))] == 0
    assert samples[("imgserve_images_processed_total", (("outcome", "succeeded"),))] == 1
    assert samples[("imgserve_operation_seconds_count", (("operation", "blur"),))] == 1
    assert (
        samples[("imgserve_operation_seconds_bucket", (("le", "0.01"), ("operation", "blur")))] == 0
    )
    assert (
        samples[("imgserve_operation_seconds_bucket", (("le", "0.025"), ("operation", "blur")))]
        == 1
    )
    assert samples[("imgserve_operation_seconds_sum", (("operation", "decode"),))] == 0.3
    assert samples[("imgserve_queue_depth", ())] == 1


def test_openapi_is_generated_from_the_request_models(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {"/jobs", "/jobs/{job_id}", "/healthz", "/metrics"}
    request_schema = document["components"]["schemas"]["JobRequest"]
    assert request_schema["required"] == ["images", "operations"]
    assert request_schema["additionalProperties"] is False
    operations = request_schema["properties"]["operations"]["items"]["oneOf"]
    op_schemas = [schema.get("properties", {}).get("op", {}) for schema in operations]
    ops = {name for op in op_schemas for name in [op.get("const"), *op.get("enum", [])]}
    assert {
        "resize",
        "split",
        "splitQuadrants",
        "blur",
        "crop",
        "rotate",
        "flip",
        "grayscale",
        "sharpen",
    } <= ops
    assert {"type": "string"}.items() <= operations[-1].items()  # the "name=value" form


def test_docs_serve_an_interactive_page_over_the_openapi_document(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert 'url: "/openapi.json"' in response.get_data(as_text=True)
