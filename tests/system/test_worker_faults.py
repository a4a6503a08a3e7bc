"""A job's state stays true when worker processes die: real Redis, real SIGKILL.

The process to kill is the one the store names as the holder of a running image
(worker.liveness.Holder): a pool process of the test's worker, whatever the load.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator

import pytest

from tests.system.service import Service
from worker.jobs import Job
from worker.liveness import Holder
from worker.store.redis_store import RedisJobStore

pytestmark = pytest.mark.slow

SLOW_CHAIN = ["resize=3", "blur=255"]  # several seconds: it cannot finish between kills


@pytest.fixture
def store(redis_url: str) -> Iterator[RedisJobStore]:
    """Return the service's job store, read as the API reads it."""
    store = RedisJobStore.from_url(redis_url, ttl=3600)
    yield store
    store.close()


def read(store: RedisJobStore, job_id: str) -> Job:
    """Return a job that must exist."""
    job = store.get(job_id)
    assert job is not None
    return job


def holders(store: RedisJobStore, job_id: str) -> dict[int, Holder]:
    """Return the holder of each running image of the job, by image."""
    images = read(store, job_id).images
    return {n: i.holder for n, i in enumerate(images) if i.state == "running" and i.holder}


def a_pool_process_of(service: Service, holder: Holder) -> bool:
    """Return whether the holder is a live pool process of the service's worker."""
    worker = service.processes[1].pid
    pool = [child.pid for child in service.worker_children()]
    return holder.node.startswith(f"imgserve-{worker}@") and holder.pid in pool


def test_a_killed_worker_process_has_its_image_redone(
    redis_service: Service, store: RedisJobStore
) -> None:
    images = [{"input": f"photos/cyclo{n}.jpg", "output": f"out/{n}.jpg"} for n in (1, 2)]
    job_id = redis_service.submit(images, SLOW_CHAIN)["id"]
    deadline = time.monotonic() + 60
    while not (held := holders(store, job_id)):
        assert time.monotonic() < deadline, f"no image started: {redis_service.tail()}"
        time.sleep(0.05)
    index, victim = next(iter(held.items()))
    assert a_pool_process_of(redis_service, victim), (victim, redis_service.worker_children())
    os.kill(victim.pid, signal.SIGKILL)
    job = redis_service.finish(job_id)
    assert job["state"] == "succeeded", job
    assert all((redis_service.root / f"out/{n}.jpg").exists() for n in (1, 2))
    assert read(store, job_id).images[index].attempts == 2  # redone, once


def test_an_image_that_kills_its_worker_every_time_fails_after_3_attempts(
    redis_service: Service, store: RedisJobStore
) -> None:
    job_id = redis_service.submit(
        [{"input": "photos/cyclo2.jpg", "output": "doomed.jpg"}], SLOW_CHAIN
    )["id"]
    killed: list[int] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not read(store, job_id).finished:
        victim = holders(store, job_id).get(0)
        if victim is not None and victim.pid not in killed:  # a new attempt: kill it too
            assert a_pool_process_of(redis_service, victim), victim
            os.kill(victim.pid, signal.SIGKILL)
            killed.append(victim.pid)
        time.sleep(0.05)
    job = redis_service.get(job_id)
    assert job["state"] == "failed", job
    assert len(killed) == 3
    assert job["images"][0]["error"] == (
        "gave up after 3 attempts: the worker processing this image stopped each time "
        "(killed, or out of memory)"
    )
    assert not (redis_service.root / "doomed.jpg").exists()
