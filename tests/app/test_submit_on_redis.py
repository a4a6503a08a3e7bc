"""Submitting on Redis: the job and its first tasks are stored together, or neither is."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from app import create_app
from app.services import Services
from worker.celery_app import QUEUE
from worker.settings import Settings


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
def services(settings: Settings) -> Services:
    """Return the services a real API builds from these settings."""
    return Services.from_settings(settings)


@pytest.fixture
def on_redis(settings: Settings, services: Services) -> FlaskClient:
    """Return a test client of an API on the test Redis."""
    return create_app({"TESTING": True, "SETTINGS": settings, "SERVICES": services}).test_client()


BODY = {
    "images": [{"input": "small.png", "output": f"out/{n}.png"} for n in range(3)],
    "operations": ["resize=0.5"],
}


def test_a_job_and_its_first_window_of_tasks_arrive_together(
    on_redis: FlaskClient, services: Services, redis_url: str
) -> None:
    assert services.task_messages is not None  # the one-script path
    response = on_redis.post("/jobs", json=BODY)
    assert response.status_code == 202
    job_id = response.get_json()["id"]
    assert queued(redis_url) == [[job_id, 0, 1], [job_id, 1, 1]]
    job = services.store.get(job_id)
    assert job is not None and job.next_index == 2 and job.state == "queued"


@pytest.mark.parametrize(
    ("url", "events", "held"),
    [
        ("redis://h:1/0", False, True),
        ("redis://h:1/0", True, False),  # a task-sent event would precede the job
        ("rediss://h:1/0", False, False),  # kombu's own transport: it cannot hold
        (None, False, False),  # embedded: SQLite and the filesystem transport
    ],
)
def test_only_imgserve_s_redis_transport_without_task_events_holds_tasks_back(
    tmp_path: Path, url: str | None, events: bool, held: bool
) -> None:
    settings = Settings(redis_url=url, task_events=events, root=tmp_path, state_dir=tmp_path)
    assert (Services.from_settings(settings).task_messages is not None) is held
