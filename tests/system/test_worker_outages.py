"""A worker outlives a Redis restart and a full Redis: a real redis-server and worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest
import redis

from tests.support import RedisServer
from tests.system.service import Service, redis_api

pytestmark = pytest.mark.slow

IMAGES = 40
CHAIN = ["blur=101"]  # about a third of a second an image: the job outlasts the fault
OUTAGE = 4.0


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """Start a private redis-server that keeps every write in its append-only file."""
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(folder, "--appendonly", "yes", "--maxmemory-policy", "noeviction")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def api(aof_redis: RedisServer, tmp_path: Path, seed_images: list[Path]) -> Iterator[Service]:
    """Run the API on that Redis, no worker yet."""
    service = redis_api(tmp_path, seed_images, aof_redis.url)
    try:
        service.wait_healthy()
        yield service
    finally:
        service.stop()


@pytest.fixture
def service(api: Service) -> Service:
    """Run the API and one worker of 2 processes on that Redis."""
    start_worker(api)
    api.wait_healthy()
    return api


def start_worker(service: Service) -> None:
    """Start a worker of 2 processes."""
    service.spawn("worker", "--concurrency", "2", name="worker")


def submit_job(service: Service) -> str:
    """Submit a job of IMAGES images; return its id once a few of them are done."""
    images = [
        {"input": f"photos/cyclo{1 + n % 4}.jpg", "output": f"out/{n}.jpg"} for n in range(IMAGES)
    ]
    job_id: str = service.submit(images, CHAIN)["id"]
    service.wait_until(job_id, lambda job: job["progress"]["done"] >= 4)
    return job_id


def assert_done_once(service: Service, job: dict[str, Any], server: RedisServer) -> None:
    """Assert the job succeeded with every output written once, and the worker lives on.

    Nothing is left in the broker either: no message queued, none delivered and not
    acknowledged (kombu would hand those out again once its visibility timeout passed).
    """
    assert job["state"] == "succeeded", f"{job}\n{service.tail()}"
    assert [image["state"] for image in job["images"]] == ["succeeded"] * IMAGES
    out = service.root / "out"
    assert sorted(path.name for path in out.iterdir()) == sorted(f"{n}.jpg" for n in range(IMAGES))
    for n in range(IMAGES):
        assert cv2.imread(str(out / f"{n}.jpg")) is not None, n
    assert_worker_alive(service)
    assert len(service.worker_children()) == 2
    client = redis.Redis(port=server.port)
    deadline = time.monotonic() + 10  # the last task's ack follows its last record
    while (client.llen("imgserve"), client.hlen("unacked")) != (0, 0):
        assert time.monotonic() < deadline, (client.llen("imgserve"), client.hlen("unacked"))
        time.sleep(0.1)


def assert_worker_alive(service: Service) -> None:
    """Assert the worker's main process is still running."""
    worker = service.processes[1]
    assert worker.poll() is None, f"the worker exited with {worker.returncode}\n{service.tail()}"


def test_a_job_outlives_a_redis_restart(service: Service, aof_redis: RedisServer) -> None:
    job_id = submit_job(service)
    redis.Redis(port=aof_redis.port).shutdown()  # with AOF on: every acknowledged write kept
    assert aof_redis.process is not None
    aof_redis.process.wait(timeout=30)
    time.sleep(OUTAGE)
    aof_redis.start()
    back = time.monotonic()
    job = service.finish(job_id, timeout=120)
    print(f"restart: the job finished {time.monotonic() - back:.1f} s after Redis was back")
    assert_done_once(service, job, aof_redis)


def test_a_job_outlives_a_full_redis(service: Service, aof_redis: RedisServer) -> None:
    job_id = submit_job(service)
    client = redis.Redis(port=aof_redis.port)
    client.config_set("maxmemory", 1)  # every write refused: "OOM command not allowed"
    time.sleep(5)
    client.config_set("maxmemory", 0)
    back = time.monotonic()
    job = service.finish(job_id, timeout=120)
    print(f"full: the job finished {time.monotonic() - back:.1f} s after Redis had room again")
    assert_done_once(service, job, aof_redis)


def test_a_worker_started_on_a_full_redis_waits_for_room(
    api: Service, aof_redis: RedisServer
) -> None:
    images = [{"input": "photos/cyclo1.jpg", "output": f"out/{n}.jpg"} for n in range(IMAGES)]
    job_id = api.submit(images, CHAIN)["id"]
    client = redis.Redis(port=aof_redis.port)
    client.config_set("maxmemory", 1)
    start_worker(api)
    time.sleep(8)  # its consumer cannot even declare its queue: every write is refused
    assert_worker_alive(api)
    client.config_set("maxmemory", 0)
    job = api.finish(job_id, timeout=120)
    assert_done_once(api, job, aof_redis)
