"""Redis goes away mid-job, or fills up, and comes back: the job still succeeds, once each image."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.system.aftermath import assert_all_succeeded_once, settle
from tests.system.conftest import StartRedis, StartService
from tests.system.service import Service

pytestmark = pytest.mark.slow

CHAIN = ["blur=101"]  # about 0.2 s an image of 1024x1024: one image a task, always some in flight
SIZE = (1024, 1024)
IMAGES = 60
FAULT_AT = 15  # images done when the fault starts: a quarter of the job


def photos(count: int) -> list[dict[str, str]]:
    """Return a job's images: the 1024x1024 photos in turn, each to its own output."""
    return [{"input": f"photos/cyclo{2 + n % 2}.jpg", "output": f"out/{n:03d}.jpg"} for n in range(count)]  # fmt: skip


def start_mid_job(service: Service) -> str:
    """Submit the job and return its id once FAULT_AT of its images are done."""
    job_id: str = service.submit(photos(IMAGES), CHAIN)["id"]
    service.wait_until(job_id, lambda j: j["progress"]["done"] >= FAULT_AT)
    return job_id


def finish_after_fault(service: Service, job_id: str, fault_ended: float) -> dict[str, Any]:
    """Follow the job to its end with the API and the worker kept alive; check its outputs."""
    job = settle(service, job_id, fault_ended=fault_ended, alive=service.processes)
    assert_all_succeeded_once(service, job, SIZE)
    return job


def test_redis_shut_down_mid_job_and_back_4_s_later_loses_no_image(
    private_redis: StartRedis, redis_stacks: StartService
) -> None:
    redis = private_redis("--appendonly", "yes")
    service = redis_stacks(redis.url)
    job_id = start_mid_job(service)
    redis.shut_down()  # `redis-cli shutdown`: the append-only file is synced first
    time.sleep(4)
    redis.start()
    finish_after_fault(service, job_id, time.monotonic())


def test_redis_killed_mid_job_and_restarted_on_its_port_and_dir_loses_no_image(
    private_redis: StartRedis, redis_stacks: StartService
) -> None:
    redis = private_redis("--appendonly", "yes", "--appendfsync", "everysec")
    service = redis_stacks(redis.url)
    job_id = start_mid_job(service)
    redis.kill()  # the last second of writes may be lost
    time.sleep(3)
    redis.start()
    finish_after_fault(service, job_id, time.monotonic())


def test_redis_at_maxmemory_for_5_s_mid_job_loses_no_image_and_the_worker_lives(
    private_redis: StartRedis, redis_stacks: StartService
) -> None:
    redis = private_redis("--maxmemory-policy", "noeviction")
    service = redis_stacks(redis.url)
    worker = service.processes[1]
    job_id = start_mid_job(service)
    client = redis.client()
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used // 2)  # every write is now refused with OOM
    try:
        time.sleep(5)
    finally:
        client.config_set("maxmemory", 0)
        client.close()
    finish_after_fault(service, job_id, time.monotonic())
    assert worker.poll() is None
    assert len(service.worker_children()) == 2
