"""Each key sees its own jobs, and submits within its limits (active jobs, rate)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import create_app
from app.backends import Backends
from tests.app.conftest import RecordedJobQueue
from tests.support import Clock, RecordingQueue
from worker.settings import Settings
from worker.store import Admission
from worker.store.sqlite_store import SqliteJobStore

ALICE = "alice-token-0123456789"
BOB = "bob-token-0123456789ab"
PHOTO = "photos/cyclo1.jpg"


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header bearing token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def clock() -> Clock:
    """Return the store's clock, which only the test moves."""
    return Clock()


def tenants(settings: Settings, clock: Clock, **changes: Any) -> FlaskClient:
    """Return a client of an app with keys alice and bob, its store admitting as settings say."""
    settings = dataclasses.replace(settings, api_keys=f"alice:{ALICE},bob:{BOB}", **changes)
    store = SqliteJobStore(
        settings.state_dir / "jobs.sqlite3",
        ttl=settings.job_ttl,
        clock=clock,
        admission=Admission.of(settings),
    )
    queue = RecordedJobQueue(store, RecordingQueue(), window=settings.job_window)
    backends = Backends(settings, queue)
    app = create_app({"TESTING": True, "SETTINGS": settings, "BACKENDS": backends})
    return app.test_client()


def post(client: FlaskClient, token: str, output: str = "out/a.jpg") -> Any:
    """Submit a one-image job as the key with token; return the response."""
    job = {"images": [{"input": PHOTO, "output": output}], "operations": ["blur=3"]}
    return client.post("/jobs", json=job, headers=bearer(token))


def test_another_keys_job_is_a_404_exactly_as_an_unknown_id(
    settings: Settings, clock: Clock
) -> None:
    client = tenants(settings, clock)
    job = post(client, ALICE).get_json()
    assert client.get(f"/jobs/{job['id']}", headers=bearer(ALICE)).status_code == 200
    for answer in (
        client.get(f"/jobs/{job['id']}", headers=bearer(BOB)),
        client.get(f"/jobs/{job['id']}?wait=5", headers=bearer(BOB)),
        client.delete(f"/jobs/{job['id']}", headers=bearer(BOB)),
    ):
        assert answer.status_code == 404
        assert answer.get_json() == {
            "type": "urn:imgserve:problem:job-not-found",
            "title": "Job not found",
            "status": 404,
            "detail": f"no job has the id {job['id']!r} (jobs expire after a while)",
            "instance": f"/jobs/{job['id']}",
        }
    assert client.get(f"/jobs/{job['id']}", headers=bearer(ALICE)).get_json()["state"] == "queued"


def test_a_key_lists_only_its_own_jobs(settings: Settings, clock: Clock) -> None:
    client = tenants(settings, clock)
    alices = [post(client, ALICE, f"out/a{n}.jpg").get_json()["id"] for n in range(2)]
    bobs = post(client, BOB, "out/b.jpg").get_json()["id"]
    listed = client.get("/jobs", headers=bearer(ALICE)).get_json()["jobs"]
    assert [job["id"] for job in listed] == alices[::-1]
    assert [job["id"] for job in client.get("/jobs", headers=bearer(BOB)).get_json()["jobs"]] == [
        bobs
    ]


def test_a_key_beyond_its_active_jobs_is_a_429_with_retry_after(
    settings: Settings, clock: Clock
) -> None:
    client = tenants(settings, clock, max_active_jobs=2)
    assert [post(client, ALICE, f"out/{n}.jpg").status_code for n in range(2)] == [202, 202]
    third = post(client, ALICE, "out/2.jpg")
    assert third.status_code == 429
    assert third.headers["Retry-After"] == "5"
    assert third.get_json() == {
        "type": "urn:imgserve:problem:over-quota",
        "title": "Too many jobs",
        "status": 429,
        "detail": "key 'alice' has 2 queued or running jobs, as many as IMGSERVE_MAX_ACTIVE_JOBS "
        "allows; submit again once one has finished",
        "instance": "/jobs",
    }
    assert post(client, BOB, "out/b.jpg").status_code == 202
    first = client.get("/jobs", headers=bearer(ALICE)).get_json()["jobs"][-1]["id"]
    client.delete(f"/jobs/{first}", headers=bearer(ALICE))
    assert post(client, ALICE, "out/2.jpg").status_code == 202


def test_a_key_submitting_faster_than_its_rate_is_a_429_until_a_token_comes(
    settings: Settings, clock: Clock
) -> None:
    client = tenants(settings, clock, submit_rate="2/s")
    assert [post(client, ALICE, f"out/{n}.jpg").status_code for n in range(2)] == [202, 202]
    third = post(client, ALICE, "out/2.jpg")
    assert third.status_code == 429
    assert third.headers["Retry-After"] == "1"
    assert third.get_json()["detail"] == (
        "key 'alice' submits faster than IMGSERVE_SUBMIT_RATE (2/s) allows; submit again in 1 s"
    )
    assert post(client, BOB, "out/b.jpg").status_code == 202
    clock.now += 0.5
    assert post(client, ALICE, "out/2.jpg").status_code == 202
    assert post(client, ALICE, "out/3.jpg").status_code == 429


def test_anonymous_jobs_have_no_owner_and_everyone_sees_them(
    client: FlaskClient, backends: Backends
) -> None:
    job = client.post(
        "/jobs", json={"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": ["blur=3"]}
    ).get_json()
    stored = backends.store.get(job["id"])
    assert stored is not None and stored.owner is None
    assert [j["id"] for j in client.get("/jobs").get_json()["jobs"]] == [job["id"]]


def test_the_owner_is_kept_in_the_job_and_never_shown(settings: Settings, clock: Clock) -> None:
    client = tenants(settings, clock)
    job = post(client, ALICE).get_json()
    assert "owner" not in job
    store = SqliteJobStore(settings.state_dir / "jobs.sqlite3", ttl=settings.job_ttl)
    stored = store.get(job["id"])
    assert stored is not None and stored.owner == "alice"
