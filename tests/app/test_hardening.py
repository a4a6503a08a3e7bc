"""The HTTP surface: security headers, CORS only when asked, no paths or traces in errors."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.backends import Backends

PHOTO = "photos/cyclo1.jpg"
JOB = {"images": [{"input": PHOTO, "output": "out/a.png"}], "operations": ["blur=3"]}


def client_with(backends: Backends, **changes: Any) -> FlaskClient:
    """Return a client of an app whose settings have these changes."""
    settings = dataclasses.replace(backends.settings, **changes)
    found = dataclasses.replace(backends, settings=settings)
    return create_app({"TESTING": True, "SETTINGS": settings, "BACKENDS": found}).test_client()


def test_job_resources_are_never_sniffed_or_stored_by_a_cache(client: FlaskClient) -> None:
    posted = client.post("/jobs", json=JOB)
    job_id = posted.get_json()["id"]
    for response in (
        posted,
        client.get(f"/jobs/{job_id}"),
        client.get("/jobs"),
        client.delete(f"/jobs/{job_id}"),
        client.get("/jobs/unknown"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Cache-Control"] == "no-store"
    assert client.get("/healthz").headers["X-Content-Type-Options"] == "nosniff"


def test_without_imgserve_cors_origins_no_origin_is_let_in(client: FlaskClient) -> None:
    response = client.get("/jobs", headers={"Origin": "https://example.com"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Vary" not in response.headers


def test_a_listed_origin_gets_cors_headers_and_its_preflight_needs_no_key(
    backends: Backends,
) -> None:
    client = client_with(
        backends,
        cors_origins="https://app.example.com, https://other.example.com/",
        api_keys="alice:alice-token-0123456789",
    )
    preflight = client.options(
        "/jobs",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE"
    assert preflight.headers["Access-Control-Allow-Headers"] == "Authorization, Content-Type"
    assert preflight.headers["Vary"] == "Origin"
    other = client.get("/jobs", headers={"Origin": "https://other.example.com"})
    assert other.status_code == 401
    assert other.headers["Access-Control-Allow-Origin"] == "https://other.example.com"
    stranger = client.get("/jobs", headers={"Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in stranger.headers


def error_answers(client: FlaskClient, root: Path) -> list[Any]:
    """Return answers to requests that fail in every way a client can make them fail."""
    os.symlink("/etc", root / "escape")
    (root / "broken.jpg").write_bytes(b"not an image")
    jobs: list[Any] = [
        {"images": [{"input": "escape/passwd", "output": "o.png"}], "operations": ["blur=3"]},
        {"images": [{"input": PHOTO, "output": "escape/x.png"}], "operations": ["blur=3"]},
        {"images": [{"input": "broken.jpg", "output": "o.png"}], "operations": ["blur=3"]},
        {"images": [{"input": "missing.jpg", "output": "o.png"}], "operations": ["nope=1"]},
        {"images": [{"input": PHOTO, "output": ".git/x.png"}], "operations": ["resize=1e9"]},
        {"images": [{"input": PHOTO, "output": "photos"}], "operations": ["blur=3"]},
        {"images": [{"input": PHOTO, "output": "o.png"}], "operations": ["blur=3"], "x": 1},
        [],
    ]
    answers = [client.post("/jobs", json=job) for job in jobs]
    answers += [
        client.post("/jobs", data="{not json", content_type="application/json"),
        client.post("/jobs", data="x", content_type="text/plain"),
        client.post("/jobs", data=b"[" * (2 * 1024 * 1024), content_type="application/json"),
        client.get("/jobs/unknown"),
        client.get("/jobs?limit=0"),
        client.put("/jobs"),
        client.get("/nowhere"),
    ]
    return answers


def test_no_error_answer_shows_a_path_outside_the_roots_or_a_stack_trace(
    app: Flask,
    client: FlaskClient,
    backends: Backends,
    root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = error_answers(client, root)

    def unusable() -> Any:
        raise PermissionError(13, "Permission denied", str(tmp_path / "state" / "jobs.sqlite3"))

    monkeypatch.setattr(backends.store.db, "connection", unusable)  # type: ignore[attr-defined]
    answers.append(client.get("/jobs/some-id"))
    monkeypatch.undo()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    monkeypatch.setattr(backends.queue, "submit", lambda job: 1 / 0)
    answers.append(client.post("/jobs", json=JOB))
    statuses = sorted({answer.status_code for answer in answers})
    assert statuses == [400, 404, 405, 413, 415, 422, 500, 503]
    for answer in answers:
        body = answer.get_data(as_text=True)
        assert answer.mimetype == "application/problem+json", body
        for secret in (
            str(tmp_path),
            sys.prefix,
            "/etc/passwd",
            "Traceback",
            'File "',
            "ZeroDivision",
        ):
            assert secret not in body, (answer.status_code, body)
