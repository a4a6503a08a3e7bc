"""The job resource: submit, read, long-poll, cancel, list."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from app import create_app, jobs
from app.backends import Backends
from tests.support import RecordingQueue, finish_image, start_image
from worker.settings import Settings
from worker.store.sqlite_store import SqliteJobStore

PHOTO = "photos/cyclo1.jpg"


def submit(client: FlaskClient, **job: object) -> dict:  # type: ignore[type-arg]
    """Submit a job and return the response's JSON, asserting 202."""
    response = client.post("/jobs", json=job)
    assert response.status_code == 202, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def test_submit_answers_202_with_location_and_the_queued_job(
    client: FlaskClient, queue: RecordingQueue
) -> None:
    response = client.post(
        "/jobs",
        json={
            "images": [{"input": PHOTO, "output": "out/a.jpg"}],
            "operations": ["splitQuadrants=True", "resize=2"],
        },
    )
    assert response.status_code == 202
    job = response.get_json()
    assert response.headers["Location"] == f"/jobs/{job['id']}"
    assert job["state"] == "queued"
    assert job["progress"] == {"total": 1, "done": 0, "failed": 0, "cancelled": 0, "percent": 0.0}
    assert job["images"] == [
        {"input": PHOTO, "output": "out/a.jpg", "state": "queued", "outputs": [], "error": None}
    ]
    assert [step["op"] for step in job["operations"]] == ["split", "resize"]
    assert job["created_at"].endswith("Z") and job["started_at"] is None
    assert queue.sent == [(job["id"], [0])]


def test_submit_enqueues_only_the_first_window_of_images(
    client: FlaskClient, queue: RecordingQueue
) -> None:
    images = [{"input": PHOTO, "output": f"out/{n}.png"} for n in range(5)]
    job = submit(client, images=images, operations=["resize=0.5"])
    assert queue.sent == [(job["id"], [0, 1])]


def test_get_answers_the_stored_job(client: FlaskClient) -> None:
    job = submit(client, images=[{"input": PHOTO, "output": "o.jpg"}], operations=["blur=3"])
    again = client.get(f"/jobs/{job['id']}")
    assert again.status_code == 200
    assert again.get_json() == job


def test_an_unknown_job_is_a_404_problem(client: FlaskClient) -> None:
    response = client.get("/jobs/does-not-exist")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json() == {
        "type": "urn:imgserve:problem:job-not-found",
        "title": "Job not found",
        "status": 404,
        "detail": "no job has the id 'does-not-exist' (jobs expire after a while)",
        "instance": "/jobs/does-not-exist",
    }


def test_long_poll_answers_as_soon_as_the_job_changes(
    client: FlaskClient, backends: Backends
) -> None:
    job = submit(client, images=[{"input": PHOTO, "output": "o.jpg"}], operations=["blur=3"])
    threading.Timer(0.3, lambda: start_image(backends.store, job["id"], 0, max_attempts=3)).start()
    started = time.monotonic()
    response = client.get(f"/jobs/{job['id']}?wait=10")
    waited = time.monotonic() - started
    assert response.get_json()["state"] == "running"
    assert 0.25 < waited < 5


def test_long_poll_gathers_progress_for_a_quarter_second_but_answers_a_finish_at_once(
    client: FlaskClient, backends: Backends, monkeypatch: pytest.MonkeyPatch
) -> None:
    images = [{"input": PHOTO, "output": f"o{n}.jpg"} for n in range(2)]
    job = submit(client, images=images, operations=["blur=3"])
    store = backends.store
    threading.Timer(0.02, lambda: start_image(store, job["id"], 0, max_attempts=3)).start()
    started = time.monotonic()
    body = client.get(f"/jobs/{job['id']}?wait=10").get_json()
    assert time.monotonic() - started >= jobs.PROGRESS_INTERVAL == 0.25
    assert (body["state"], body["images"][0]["state"]) == ("running", "running")

    def finish() -> None:
        finish_image(store, job["id"], 0, error=None, timings=[])
        start_image(store, job["id"], 1, max_attempts=3)
        finish_image(store, job["id"], 1, error=None, timings=[])

    monkeypatch.setattr(jobs, "PROGRESS_INTERVAL", 5.0)  # a finish does not wait for it
    threading.Timer(0.02, finish).start()
    started = time.monotonic()
    body = client.get(f"/jobs/{job['id']}?wait=10").get_json()
    assert time.monotonic() - started < 3
    assert body["state"] == "succeeded"
    assert body["progress"]["done"] == 2


def test_long_poll_of_a_finished_job_answers_at_once(
    client: FlaskClient, backends: Backends
) -> None:
    job = submit(client, images=[{"input": PHOTO, "output": "o.jpg"}], operations=["blur=3"])
    start_image(backends.store, job["id"], 0, max_attempts=3)
    finish_image(backends.store, job["id"], 0, error=None, timings=[])
    started = time.monotonic()
    response = client.get(f"/jobs/{job['id']}?wait=30")
    assert time.monotonic() - started < 1
    body = response.get_json()
    assert body["state"] == "succeeded"
    assert body["images"][0]["outputs"] == ["o.jpg"]
    assert body["progress"]["percent"] == 100.0


def test_a_post_with_wait_answers_once_the_job_finished(
    client: FlaskClient, backends: Backends
) -> None:
    def run_it() -> None:
        job_id = backends.store.list_jobs(limit=1, offset=0)[0].id
        start_image(backends.store, job_id, 0, max_attempts=3)
        finish_image(backends.store, job_id, 0, error=None, timings=[])

    timer = threading.Timer(0.4, run_it)
    timer.start()
    started = time.monotonic()
    response = client.post(
        "/jobs?wait=10",
        json={"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": ["blur=3"]},
    )
    waited = time.monotonic() - started
    timer.join()
    assert response.status_code == 202
    body = response.get_json()
    assert response.headers["Location"] == f"/jobs/{body['id']}"
    assert (body["state"], body["images"][0]["state"]) == ("succeeded", "succeeded")
    assert 0.35 < waited < 5


def test_a_post_with_wait_answers_the_job_as_it_is_when_the_wait_runs_out(
    client: FlaskClient,
) -> None:
    started = time.monotonic()
    response = client.post(
        "/jobs?wait=0.3",
        json={"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": ["blur=3"]},
    )
    assert time.monotonic() - started >= 0.3
    assert response.status_code == 202 and response.get_json()["state"] == "queued"


def test_a_post_with_a_wrong_wait_creates_nothing(client: FlaskClient) -> None:
    body = {"images": [{"input": PHOTO, "output": "o.jpg"}], "operations": ["blur=3"]}
    response = client.post("/jobs?wait=31", json=body)
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"parameter": "wait", "detail": "wait must be a number from 0 to 30, not '31'"}
    ]
    assert client.get("/jobs").get_json()["jobs"] == []


def test_wait_must_be_a_number_up_to_30(client: FlaskClient) -> None:
    job = submit(client, images=[{"input": PHOTO, "output": "o.jpg"}], operations=["blur=3"])
    for raw in ("31", "-1", "soon", "nan", "inf"):
        response = client.get(f"/jobs/{job['id']}?wait={raw}")
        assert response.status_code == 422, raw
        assert response.get_json()["errors"] == [
            {"parameter": "wait", "detail": f"wait must be a number from 0 to 30, not {raw!r}"}
        ]


def test_cancel_stops_queued_images_and_is_idempotent(client: FlaskClient) -> None:
    images = [{"input": PHOTO, "output": f"out/{n}.png"} for n in range(3)]
    job = submit(client, images=images, operations=["resize=0.5"])
    first = client.delete(f"/jobs/{job['id']}")
    second = client.delete(f"/jobs/{job['id']}")
    assert first.status_code == second.status_code == 200
    assert first.get_json()["state"] == second.get_json()["state"] == "cancelled"
    assert [i["state"] for i in second.get_json()["images"]] == ["cancelled"] * 3
    assert second.get_json()["progress"]["cancelled"] == 3


def test_cancel_of_an_unknown_job_is_a_404(client: FlaskClient) -> None:
    assert client.delete("/jobs/nope").status_code == 404


def test_list_is_newest_first_and_paginated(client: FlaskClient) -> None:
    ids = [
        submit(client, images=[{"input": PHOTO, "output": f"{n}.jpg"}], operations=["blur=3"])["id"]
        for n in range(3)
    ]
    page = client.get("/jobs?limit=2").get_json()
    assert [j["id"] for j in page["jobs"]] == ids[::-1][:2]
    assert page["jobs"][0]["href"] == f"/jobs/{ids[2]}"
    assert page["next"] == "/jobs?limit=2&offset=2"
    rest = client.get(page["next"]).get_json()
    assert [j["id"] for j in rest["jobs"]] == [ids[0]]
    assert rest["next"] is None


def test_list_limits_are_checked(client: FlaskClient) -> None:
    response = client.get("/jobs?limit=0")
    assert response.status_code == 422
    assert response.get_json()["errors"] == [
        {"parameter": "limit", "detail": "limit must be a whole number from 1 to 100, not '0'"}
    ]


def test_a_read_shows_the_record_as_it_is_and_fails_no_image_whose_worker_is_gone(
    client: FlaskClient, backends: Backends
) -> None:
    job = submit(client, images=[{"input": PHOTO, "output": "o.jpg"}], operations=["blur=3"])
    start_image(backends.store, job["id"], 0, max_attempts=3)
    backends.queue.store = SqliteJobStore(
        backends.settings.state_dir / "jobs.sqlite3", ttl=backends.settings.job_ttl, stale_after=6,
        clock=lambda: time.time() + 60,
    )  # fmt: skip
    body = client.get(f"/jobs/{job['id']}").get_json()
    assert (body["state"], body["images"][0]["state"], body["images"][0]["error"]) == (
        "running",
        "running",
        None,
    )  # the workers' reapers queue it again; a read changes nothing


def test_nothing_is_written_for_a_submitted_job(client: FlaskClient, root: Path) -> None:
    before = sorted(root.rglob("*"))
    submit(client, images=[{"input": PHOTO, "output": "new/dir/o.jpg"}], operations=["blur=3"])
    assert sorted(root.rglob("*")) == before


def test_a_long_poll_beyond_the_servers_slots_is_a_429_and_nothing_is_submitted(
    settings: Settings, backends: Backends, queue: RecordingQueue
) -> None:
    app = create_app({"TESTING": True, "SETTINGS": settings, "BACKENDS": backends, "MAX_WAITS": 1})
    client = app.test_client()
    job = submit(client, images=[{"input": PHOTO, "output": "o.jpg"}], operations=["blur=3"])

    def hold() -> None:  # until it has the slot (a probe below may hold it for a moment)
        while client.get(f"/jobs/{job['id']}?wait=20").status_code == 429:
            time.sleep(0.01)

    held = threading.Thread(target=hold)
    held.start()
    deadline = time.monotonic() + 10
    while (refused := client.get(f"/jobs/{job['id']}?wait=0.01")).status_code != 429:
        assert time.monotonic() < deadline, "the first long-poll never took its slot"
    assert refused.headers["Retry-After"] == "1"
    assert refused.get_json() == {
        "type": "urn:imgserve:problem:too-many-waits",
        "title": "Too many waits",
        "status": 429,
        "detail": "this server already holds 1 long-polls, as many as it may; "
        "ask again in a second, or without wait",
        "instance": f"/jobs/{job['id']}",
    }
    body = {"images": [{"input": PHOTO, "output": "p.jpg"}], "operations": ["blur=3"]}
    assert client.post("/jobs?wait=5", json=body).status_code == 429
    assert [j.id for j in backends.store.list_jobs(limit=10, offset=0)] == [job["id"]]
    assert client.get(f"/jobs/{job['id']}").status_code == 200  # no wait: no slot needed
    client.delete(f"/jobs/{job['id']}")  # the held long-poll answers the change
    held.join(timeout=10)
    assert client.get(f"/jobs/{job['id']}?wait=1").get_json()["state"] == "cancelled"
    assert queue.sent == [(job["id"], [0])]


def test_a_server_keeps_a_quarter_of_its_threads_free_of_long_polls() -> None:
    assert [jobs.wait_slots(n) for n in (1, 4, 8, 32, 64)] == [1, 2, 6, 24, 48]
