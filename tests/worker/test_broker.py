"""The job queue on a real broker: Redis and the embedded filesystem transport take one path."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import redis
from kombu.messaging import Producer
from redis.connection import AbstractConnection

from tests.worker.test_store import make_job
from worker.celery_app import QUEUE, make_celery
from worker.job_queue import JobQueue
from worker.settings import Settings
from worker.store.redis_store import RedisJobStore
from worker.store.sqlite_store import SqliteJobStore


def on_redis(redis_url: str, tmp_path: Path, *, window: int = 3) -> JobQueue:
    """Return imgserve's job queue on the test Redis, over a Redis store."""
    settings = Settings(redis_url=redis_url, root=tmp_path, state_dir=tmp_path, job_window=window)
    store = RedisJobStore.from_url(redis_url, ttl=3600)
    return JobQueue.from_settings(settings, store, retry=False)


def queued(redis_url: str) -> list[tuple[str, int, int]]:
    """Return the (job, index, count) of every task in imgserve's queue, oldest first."""
    client = redis.Redis.from_url(redis_url)
    messages = [json.loads(raw) for raw in reversed(client.lrange(QUEUE, 0, -1))]
    client.close()
    return [(m["headers"]["task"], *json.loads(_body(m))[0]) for m in messages]


def _body(message: dict[str, object]) -> bytes:
    """Return a kombu Redis message's body, base64 as kombu sends it."""
    return base64.b64decode(str(message["body"]))


def test_an_empty_redis_queue_has_a_depth_of_0(redis_url: str, tmp_path: Path) -> None:
    assert on_redis(redis_url, tmp_path).depth() == 0  # Redis keeps no empty list


def test_a_submitted_job_is_stored_and_its_first_window_enqueued(
    redis_url: str, tmp_path: Path
) -> None:
    queue = on_redis(redis_url, tmp_path, window=3)
    job = make_job(images=5)
    queue.submit(job)
    assert queued(redis_url) == [("imgserve.process_image", job.id, n, 1) for n in range(3)]
    stored = queue.store.get(job.id)
    assert stored is not None and stored.next_index == 3 and stored.state == "queued"
    assert queue.depth() == 3


def test_the_embedded_broker_takes_the_same_path(tmp_path: Path) -> None:
    settings = Settings(root=tmp_path, state_dir=tmp_path / "state", job_window=2)
    store = SqliteJobStore(tmp_path / "jobs.sqlite3", ttl=3600)
    queue = JobQueue.from_settings(settings, store, retry=False)
    job = make_job(images=3)
    queue.submit(job)
    queue.ping()
    assert queue.depth() == 2
    assert len(list((tmp_path / "state" / "queue").iterdir())) == 2  # one file a task
    stored = store.get(job.id)
    assert stored is not None and stored.next_index == 2 and stored.state == "queued"


def test_a_window_of_tasks_is_enqueued_in_one_round_trip(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = on_redis(redis_url, tmp_path)
    queue.enqueue("warm-up", [range(0, 1)])
    sends = count_sends(monkeypatch)
    queue.enqueue("job", [range(n, n + 1) for n in range(8)])
    assert len(sends) == 1  # kombu's publish batch: one pipeline
    assert queued(redis_url)[1:] == [("imgserve.process_image", "job", n, 1) for n in range(8)]


def test_a_single_task_is_published_on_its_own_within_celerys_retry(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = on_redis(redis_url, tmp_path)
    monkeypatch.setattr(Producer, "batch", lambda *_, **__: pytest.fail("batched"))
    queue.enqueue("job", [range(4, 7)])
    assert queued(redis_url) == [("imgserve.process_image", "job", 4, 3)]


def test_a_broker_that_refuses_gives_a_ping_error_and_no_depth(tmp_path: Path) -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", root=tmp_path, state_dir=tmp_path)
    queue = JobQueue(make_celery(settings), SqliteJobStore(tmp_path / "j.sqlite3", ttl=60),
                     window=1, retry=False)  # fmt: skip
    with pytest.raises(Exception, match=r"Connection refused"):
        queue.ping()
    with pytest.raises(Exception, match=r"Connection refused"):
        queue.depth()


def count_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record every write of commands to Redis from now on (a pipeline is one)."""
    sends: list[int] = []
    original = AbstractConnection.send_packed_command

    def counting(self: AbstractConnection, command: object, check_health: bool = True) -> None:
        sends.append(1)
        original(self, command, check_health)  # type: ignore[arg-type]

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sends
