"""A frozen Redis (SIGSTOP: it accepts connections and never answers) is a quick 503."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from app import create_app
from app.backends import Backends
from tests.support import RedisServer
from worker.job_queue import JobQueue
from worker.settings import Settings
from worker.store.redis_store import RedisJobStore

OUTPUTS = itertools.count()


def job() -> dict[str, object]:
    """Return a small job with an output of its own (one writer an output)."""
    output = f"o{next(OUTPUTS)}.png"
    return {"images": [{"input": "small.png", "output": output}], "operations": ["resize=0.5"]}


TIMED_OUT = "Redis did not answer in time: Timeout reading from socket"


class Freezable(RedisServer):
    """A private redis-server that can be frozen and thawed."""

    def freeze(self) -> None:
        """Stop the process where it is, as a stalled machine or a partition looks."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """Let it run again."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)


def own_redis(directory: Path) -> Iterator[Freezable]:
    """Start a Redis of the test's own (never the session's), thawed and stopped after."""
    directory.mkdir()
    server = Freezable(directory)
    server.start()
    try:
        yield server
    finally:
        server.thaw()
        server.stop()


@pytest.fixture
def frozen(tmp_path: Path) -> Iterator[Freezable]:
    """Return a Redis of the test's own, for the store and the broker."""
    yield from own_redis(tmp_path / "redis")


@pytest.fixture
def broker_only(tmp_path: Path) -> Iterator[Freezable]:
    """Return a second Redis of the test's own, for the broker alone."""
    yield from own_redis(tmp_path / "broker")


def api(root: Path, tmp_path: Path, store_url: str, broker_url: str) -> FlaskClient:
    """Return a fresh API on these Redis servers, nothing sent yet.

    The store gets the timeouts the job store's own clients have (2 s to connect, 2 s to
    answer); the broker gets worker/celery_app.py's.
    """
    settings = Settings(redis_url=broker_url, root=root, state_dir=tmp_path / "state")
    client = redis.Redis.from_url(store_url, socket_connect_timeout=2, socket_timeout=2)
    store = RedisJobStore(client, ttl=3600)
    backends = Backends(settings, JobQueue.from_settings(settings, store, retry=False))
    config = {"TESTING": True, "SETTINGS": settings, "BACKENDS": backends}
    return create_app(config).test_client()


def timed(call: object) -> tuple[object, float]:
    """Return what call() answers and the seconds it took."""
    started = time.monotonic()
    answer = call()  # type: ignore[operator]
    return answer, time.monotonic() - started


def test_healthz_is_a_503_within_2_s_of_a_freeze_and_200_after_it(
    root: Path, tmp_path: Path, frozen: Freezable
) -> None:
    client = api(root, tmp_path, frozen.url, frozen.url)
    assert client.get("/healthz").status_code == 200
    frozen.freeze()
    response, took = timed(lambda: client.get("/healthz"))
    assert took < 2
    assert response.status_code == 503  # type: ignore[attr-defined]
    body = response.get_json()  # type: ignore[attr-defined]
    assert body["checks"] == {
        "store": "the job store does not answer within 1.5 s",
        "broker": "the broker does not answer within 1.5 s",
    }
    assert body["detail"] == "; ".join(body["checks"].values())
    frozen.thaw()
    deadline = time.monotonic() + 10
    while client.get("/healthz").status_code != 200:
        assert time.monotonic() < deadline, "healthz stayed 503 after the thaw"
        time.sleep(0.1)


def test_a_fresh_api_answers_post_and_get_with_503_within_3_s_of_a_freeze(
    root: Path, tmp_path: Path, frozen: Freezable
) -> None:
    client = api(root, tmp_path, frozen.url, frozen.url)
    frozen.freeze()
    response, took = timed(lambda: client.post("/jobs", json=job()))
    assert took < 3
    assert response.status_code == 503  # type: ignore[attr-defined]
    detail = response.get_json()["detail"]  # type: ignore[attr-defined]
    job_id = detail.split(" ")[1]
    assert detail == (
        f"job {job_id} may exist (GET /jobs/{job_id} tells): the job store did not answer in "
        f"time, and withdrawing the job was not confirmed: {TIMED_OUT}"
    )
    response, took = timed(lambda: client.get(f"/jobs/{job_id}"))
    assert took < 3
    assert response.status_code == 503  # type: ignore[attr-defined]
    assert response.get_json()["detail"] == f"the job store does not answer: {TIMED_OUT}"  # type: ignore[attr-defined]
    frozen.thaw()
    # The create never got past the connection's handshake: nothing was stored.
    assert settled(client, job_id) == 404


def settled(client: FlaskClient, job_id: str) -> int | str:
    """Return the job's state once its withdrawal is through (404 when it is not stored)."""
    deadline = time.monotonic() + 15
    while True:
        response = client.get(f"/jobs/{job_id}")
        found = (
            response.get_json()["state"] if response.status_code == 200 else response.status_code
        )
        if found != "queued" or time.monotonic() > deadline:
            return found  # type: ignore[no-any-return]
        time.sleep(0.1)


def test_a_warm_api_answers_503_within_3_s_of_a_freeze_and_202_after_it(
    root: Path, tmp_path: Path, frozen: Freezable
) -> None:
    client = api(root, tmp_path, frozen.url, frozen.url)
    assert client.post("/jobs", json=job()).status_code == 202
    frozen.freeze()
    response, took = timed(lambda: client.post("/jobs", json=job()))
    assert took < 3
    assert response.status_code == 503  # type: ignore[attr-defined]
    job_id = response.get_json()["detail"].split(" ")[1]  # type: ignore[attr-defined]
    response, took = timed(lambda: client.get("/jobs"))
    assert took < 3
    assert response.status_code == 503  # type: ignore[attr-defined]
    frozen.thaw()
    # The create was sent before Redis froze and ran when it thawed: the job is withdrawn.
    assert settled(client, job_id) == "cancelled"
    assert client.post("/jobs", json=job()).status_code == 202


def test_a_frozen_broker_is_a_503_within_3_s_and_the_job_is_withdrawn(
    root: Path, tmp_path: Path, frozen: Freezable, broker_only: Freezable
) -> None:
    client = api(root, tmp_path, frozen.url, broker_only.url)
    assert client.post("/jobs", json=job()).status_code == 202  # both warm
    broker_only.freeze()
    response, took = timed(lambda: client.post("/jobs", json=job()))
    assert took < 3
    assert response.status_code == 503  # type: ignore[attr-defined]
    assert response.get_json()["detail"] == (  # type: ignore[attr-defined]
        "the queue does not answer, the job was withdrawn: Timeout reading from socket"
    )
    jobs = client.get("/jobs").get_json()["jobs"]
    assert [job["state"] for job in jobs] == ["cancelled", "queued"]
