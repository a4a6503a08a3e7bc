"""Submitting on Redis: the job is stored, then its first tasks are sent, or it is withdrawn."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from app import create_app
from app.backends import Backends
from worker.celery_app import QUEUE
from worker.settings import Settings
from worker.store import StoreUnavailable
from worker.store.redis_store import RedisJobStore


def queued(redis_url: str) -> list[list[object]]:
    """Return the arguments of every task in imgserve's queue, oldest first."""
    client = redis.Redis.from_url(redis_url)
    messages = [json.loads(raw) for raw in reversed(client.lrange(QUEUE, 0, -1))]
    client.close()
    return [json.loads(base64.b64decode(m["body"]))[0] for m in messages]


@pytest.fixture
def settings(root: Path, tmp_path: Path, redis_url: str) -> Settings:
    """Return settings over the test root, on the test Redis, with a window of 2."""
    return Settings(redis_url=redis_url, root=root, state_dir=tmp_path / "state", job_window=2)


@pytest.fixture
def backends(settings: Settings) -> Backends:
    """Return the backends a real API builds from these settings."""
    return Backends.from_settings(settings)


@pytest.fixture
def on_redis(settings: Settings, backends: Backends) -> FlaskClient:
    """Return a test client of an API on the test Redis."""
    return create_app({"TESTING": True, "SETTINGS": settings, "BACKENDS": backends}).test_client()


BODY = {
    "images": [{"input": "small.png", "output": f"out/{n}.png"} for n in range(3)],
    "operations": ["resize=0.5"],
}


def test_a_job_is_stored_and_its_first_window_of_tasks_enqueued(
    on_redis: FlaskClient, backends: Backends, redis_url: str
) -> None:
    response = on_redis.post("/jobs", json=BODY)
    assert response.status_code == 202
    job_id = response.get_json()["id"]
    assert queued(redis_url) == [[job_id, 0, 1], [job_id, 1, 1]]
    job = backends.store.get(job_id)
    assert job is not None and job.next_index == 2 and job.state == "queued"


def test_a_store_that_fails_leaves_neither_job_nor_task(
    on_redis: FlaskClient, backends: Backends, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backends.store
    assert isinstance(store, RedisJobStore)

    def down(*_: object, **__: object) -> None:
        raise redis.ConnectionError("Connection refused.")

    monkeypatch.setattr(store, "_create", down)
    response = on_redis.post("/jobs", json=BODY)
    assert response.status_code == 503
    assert response.get_json()["detail"] == (
        "the job store does not answer, nothing was stored or enqueued: "
        "Redis does not answer: Connection refused."
    )
    assert queued(redis_url) == []
    assert store.list_jobs(limit=10, offset=0) == []


def test_a_store_that_times_out_withdraws_the_job_it_may_have_stored(
    on_redis: FlaskClient, backends: Backends, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backends.store
    assert isinstance(store, RedisJobStore)
    create = store._create

    def slow(*args: object, **kwargs: object) -> None:
        create(*args, **kwargs)  # the script ran; its answer came too late
        raise redis.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(store, "_create", slow)
    response = on_redis.post("/jobs", json=BODY)
    assert response.status_code == 503
    [job] = store.list_jobs(limit=10, offset=0)
    assert response.get_json()["detail"] == (
        f"the job store did not answer in time; job {job.id} was withdrawn if it was stored, "
        "and none of it runs: Redis did not answer in time: Timeout reading from socket"
    )
    assert on_redis.get(f"/jobs/{job.id}").get_json()["state"] == "cancelled"
    assert queued(redis_url) == []


def test_a_withdrawal_the_store_does_not_confirm_says_the_job_may_exist_and_where_to_look(
    on_redis: FlaskClient, backends: Backends, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = backends.store
    assert isinstance(store, RedisJobStore)
    create = store._create

    def slow(*args: object, **kwargs: object) -> None:
        create(*args, **kwargs)
        raise redis.TimeoutError("Timeout reading from socket")

    def down(job_id: str) -> None:
        raise StoreUnavailable("Redis does not answer: Connection refused.")

    monkeypatch.setattr(store, "_create", slow)
    monkeypatch.setattr(store, "cancel", down)
    response = on_redis.post("/jobs", json=BODY)
    assert response.status_code == 503
    detail = response.get_json()["detail"]
    job_id = detail.split(" ")[1]
    assert detail == (
        f"job {job_id} may exist (GET /jobs/{job_id} tells): the job store did not answer in "
        "time, and withdrawing the job was not confirmed: Redis did not answer in time: "
        "Timeout reading from socket"
    )
    assert on_redis.get(f"/jobs/{job_id}").get_json()["state"] == "queued"  # it was stored
    assert queued(redis_url) == []
