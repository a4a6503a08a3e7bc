"""A job's state stays true when worker processes die: real Redis, real SIGKILL."""

from __future__ import annotations

import contextlib
import signal
import time

import psutil
import pytest

from tests.system.service import Service

pytestmark = pytest.mark.slow

SLOW_CHAIN = ["resize=3", "blur=255"]  # several seconds: it cannot finish between kills


def busy_children(service: Service) -> list[psutil.Process]:
    """Return the pool processes that are using the CPU right now."""
    children = service.worker_children()
    for child in children:
        with contextlib.suppress(psutil.Error):
            child.cpu_percent(None)
    time.sleep(0.3)
    busy = []
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.cpu_percent(None) > 50:
                busy.append(child)
    return busy


def test_a_killed_worker_process_has_its_image_redone(redis_service: Service) -> None:
    images = [{"input": f"photos/cyclo{n}.jpg", "output": f"out/{n}.jpg"} for n in (1, 2)]
    job_id = redis_service.submit(images, SLOW_CHAIN)["id"]
    redis_service.wait_until(job_id, lambda j: j["state"] == "running")
    victims = busy_children(redis_service)
    assert victims, "no pool process was busy"
    victims[0].send_signal(signal.SIGKILL)
    job = redis_service.finish(job_id)
    assert job["state"] == "succeeded", job
    assert all((redis_service.root / f"out/{n}.jpg").exists() for n in (1, 2))


def test_an_image_that_kills_its_worker_every_time_fails_after_3_attempts(
    redis_service: Service,
) -> None:
    job_id = redis_service.submit(
        [{"input": "photos/cyclo2.jpg", "output": "doomed.jpg"}], SLOW_CHAIN
    )["id"]
    kills = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = redis_service.get(job_id)
        if job["finished_at"]:
            break
        if job["images"][0]["state"] == "running":
            for victim in busy_children(redis_service):
                victim.send_signal(signal.SIGKILL)
                kills += 1
        time.sleep(0.1)
    assert job["state"] == "failed", job
    assert kills == 3
    assert job["images"][0]["error"] == (
        "gave up after 3 attempts: the worker processing this image stopped each time "
        "(killed, or out of memory)"
    )
    assert not (redis_service.root / "doomed.jpg").exists()
