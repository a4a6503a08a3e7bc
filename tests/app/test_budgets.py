"""A job's budgets, from the plan made at submission: its outputs and their pixels."""

from __future__ import annotations

import dataclasses
from typing import Any

from flask.testing import FlaskClient

from app import create_app
from app.backends import Backends
from worker.settings import Settings


def client_with(backends: Backends, **changes: Any) -> FlaskClient:
    """Return a client of an app whose settings have these changes."""
    settings = dataclasses.replace(backends.settings, **changes)
    found = dataclasses.replace(backends, settings=settings)
    return create_app({"TESTING": True, "SETTINGS": settings, "BACKENDS": found}).test_client()


def post(client: FlaskClient, images: int, operations: list[Any]) -> Any:
    """Submit a job of images copies of small.png (64x48); return the response."""
    job = {
        "images": [{"input": "small.png", "output": f"out/{n}.png"} for n in range(images)],
        "operations": operations,
    }
    return client.post("/jobs", json=job)


def test_a_job_over_the_pixel_budget_is_a_422_naming_it_and_the_jobs_figure(
    backends: Backends,
) -> None:
    client = client_with(backends, max_job_pixels=20_000)
    response = post(client, 2, ["resize=2"])  # two outputs of 128x96
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {
            "pointer": "/images",
            "detail": "the job's outputs would total 24,576 pixels, more than "
            "IMGSERVE_MAX_JOB_PIXELS allows (20,000)",
        }
    ]
    assert post(client, 1, ["resize=2"]).status_code == 202


def test_a_job_over_the_outputs_budget_is_a_422_naming_it_and_the_jobs_figure(
    backends: Backends,
) -> None:
    client = client_with(backends, max_job_outputs=7)
    response = post(client, 2, ["splitQuadrants=True"])
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {
            "pointer": "/images",
            "detail": "the job would write 8 outputs, more than IMGSERVE_MAX_JOB_OUTPUTS "
            "allows (7)",
        }
    ]
    assert post(client, 1, ["splitQuadrants=True"]).status_code == 202


def test_the_budgets_default_to_20_gigapixels_10000_outputs_20_active_jobs_10_a_second(
    tmp_path: Any,
) -> None:
    settings = Settings.from_env({}, root=tmp_path)
    assert (settings.max_job_pixels, settings.max_job_outputs) == (20_000_000_000, 10_000)
    assert (settings.max_active_jobs, settings.rate) == (20, (10.0, 10))
    assert settings.overwrite == "replace"
    env = {"IMGSERVE_MAX_JOB_PIXELS": "5", "IMGSERVE_SUBMIT_RATE": "3/min"}
    assert Settings.from_env(env).max_job_pixels == 5
    assert Settings.from_env(env).rate == (0.05, 3)
