"""Where a job may write: never a hidden part, never the input root, never an active input."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import create_app
from app.backends import Backends
from worker.settings import Settings

PHOTO = "photos/cyclo1.jpg"


def post(client: FlaskClient, output: str, **extra: Any) -> Any:
    """Submit a one-image job reading PHOTO; return the response."""
    job = {"images": [{"input": PHOTO, "output": output}], "operations": ["blur=3"], **extra}
    return client.post("/jobs", json=job)


def refusal(response: Any) -> list[dict[str, str]]:
    """Return a 422's errors, asserting the status."""
    assert response.status_code == 422, response.get_json()
    errors: list[dict[str, str]] = response.get_json()["errors"]
    return errors


def client_with(backends: Backends, **changes: Any) -> FlaskClient:
    """Return a client of an app whose settings have these changes."""
    settings = dataclasses.replace(backends.settings, **changes)
    found = dataclasses.replace(backends, settings=settings)
    return create_app({"TESTING": True, "SETTINGS": settings, "BACKENDS": found}).test_client()


@pytest.mark.parametrize(
    "output", [".git/hooks/x.png", "out/.hidden.png", "out/x/../.cache/y.png", "./.x/y.png"]
)
def test_an_output_in_a_hidden_folder_or_file_is_refused(
    client: FlaskClient, root: Path, output: str
) -> None:
    assert refusal(post(client, output)) == [
        {
            "pointer": "/images/0/output",
            "detail": f"output {output!r} is in a hidden folder or file (a name starting with '.')",
        }
    ]
    assert not (root / ".git").exists()


def test_an_output_through_a_link_into_a_hidden_folder_is_refused(
    client: FlaskClient, root: Path
) -> None:
    (root / ".secret").mkdir()
    os.symlink(root / ".secret", root / "visible")
    assert refusal(post(client, "visible/x.png"))[0]["detail"] == (
        "output 'visible/x.png' is in a hidden folder or file (a name starting with '.')"
    )


def test_with_separate_roots_an_output_inside_the_input_root_is_refused(
    backends: Backends, root: Path, tmp_path: Path
) -> None:
    client = client_with(backends, root=tmp_path, input_root=root, output_root=tmp_path)
    output = f"{root.name}/photos/new.png"
    job = {"images": [{"input": PHOTO, "output": output}], "operations": ["blur=3"]}
    assert refusal(client.post("/jobs", json=job)) == [
        {
            "pointer": "/images/0/output",
            "detail": f"output {output!r} is inside the input root, which imgserve only reads",
        }
    ]
    assert post(client, "out/new.png").status_code == 202


def test_an_output_over_the_input_of_a_queued_job_is_refused(client: FlaskClient) -> None:
    reader = post(client, "out/a.png").get_json()
    other = {"images": [{"input": "small.png", "output": PHOTO}], "operations": ["blur=3"]}
    assert refusal(client.post("/jobs", json=other)) == [
        {
            "pointer": "/images/0/output",
            "detail": f"output {PHOTO!r} is the input of job {reader['id']}, which is "
            "queued or running",
        }
    ]
    client.delete(f"/jobs/{reader['id']}")
    assert client.post("/jobs", json=other).status_code == 202


def test_overwrite_false_refuses_an_output_that_exists(client: FlaskClient) -> None:
    assert refusal(post(client, "small.png", overwrite=False)) == [
        {
            "pointer": "/images/0/output",
            "detail": "output 'small.png' already exists, and the job does not replace files "
            "(overwrite: false)",
        }
    ]
    assert post(client, "new.png", overwrite=False).status_code == 202
    assert post(client, "small.png").status_code == 202


def test_imgserve_overwrite_never_is_the_default_a_job_may_override(backends: Backends) -> None:
    client = client_with(backends, overwrite="never")
    assert refusal(post(client, "small.png"))[0]["pointer"] == "/images/0/output"
    job = post(client, "small.png", overwrite=True)
    assert job.status_code == 202
    stored = backends.store.get(job.get_json()["id"])
    assert stored is not None and stored.overwrite is True


def test_a_job_keeps_its_overwrite_for_the_workers_check(
    client: FlaskClient, backends: Backends
) -> None:
    job = post(client, "new.png", overwrite=False).get_json()
    stored = backends.store.get(job["id"])
    assert stored is not None and stored.overwrite is False


def test_imgserve_overwrite_takes_replace_or_never(settings: Settings) -> None:
    from worker.settings import SettingsError

    with pytest.raises(SettingsError) as raised:
        dataclasses.replace(settings, overwrite="sometimes")
    assert str(raised.value) == "IMGSERVE_OVERWRITE='sometimes' is not one of replace, never"
