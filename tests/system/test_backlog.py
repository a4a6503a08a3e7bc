"""A backlog longer than IMGSERVE_STALE_AFTER: jobs waiting their turn are not failed as lost.

IMGSERVE_STALE_AFTER is how long a worker may go without a heartbeat: it bounds nothing
about how long a job waits, or an image runs.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
import requests

from tests.system.aftermath import STRANDED_AFTER, assert_all_succeeded_once, read_job, where
from tests.system.conftest import StartService
from tests.system.service import FINAL

pytestmark = pytest.mark.slow

# Scaled down: the least staleness taken (6 s, three heartbeats), images of 0.2 to 0.5 s,
# and 28 jobs of 8 images ahead of a small one: 45 to 110 s of work for 2 processes, so
# the last ones wait 22 s or more for their first turn, over 3 x 6 s.
LIMITS = {"IMGSERVE_STALE_AFTER": "6"}
STALE_AFTER = 6
CHAIN = ["blur=201"]
JOBS, IMAGES = 28, 8


def waited(job: dict[str, Any]) -> float:
    """Return the seconds from a job's creation to its first image's start."""
    created, started = (datetime.fromisoformat(job[k]) for k in ("created_at", "started_at"))
    return (started - created).total_seconds()


def photos(j: int) -> list[dict[str, str]]:
    """Return the images of backlog job j: the 1024x1024 photos in turn, to out/j/."""
    return [{"input": f"photos/cyclo{2 + n % 2}.jpg", "output": f"out/{j}/{n}.jpg"} for n in range(IMAGES)]  # fmt: skip


def settled(job: dict[str, Any] | None) -> bool:
    """Return whether a job was read and is final with nothing left running."""
    return job is not None and job["state"] in FINAL and job["finished_at"] is not None


def test_a_backlog_of_3_times_stale_after_fails_no_job_that_waits_its_turn(
    redis_url: str, redis_stacks: StartService
) -> None:
    service = redis_stacks(redis_url, **LIMITS)
    ids = [service.submit(photos(j), CHAIN)["id"] for j in range(JOBS)]
    small = [{"input": "photos/cyclo4.jpg", "output": "out/small/s.png"}]
    ids.append(service.submit(small, ["resize=0.5"])["id"])
    # Read every job and the listing all along, as clients do: the reads must not fail them.
    jobs: dict[str, dict[str, Any] | None] = dict.fromkeys(ids)
    seen: list[Any] = []
    moved = time.monotonic()
    while not all(settled(job) for job in jobs.values()):
        for job_id in ids:
            jobs[job_id] = read_job(service, job_id)[1] or jobs[job_id]
        listing = requests.get(f"{service.url}/jobs", params={"limit": 100}, timeout=10)
        assert listing.status_code == 200, listing.text
        states = [job and [image["state"] for image in job["images"]] for job in jobs.values()]
        if states != seen:
            seen, moved = states, time.monotonic()
        stuck = [where(job) for job in jobs.values() if not settled(job)]
        assert time.monotonic() - moved < STRANDED_AFTER, f"nothing moved for 30 s: {stuck}"
        time.sleep(0.5)
    final = [job for job in jobs.values() if job is not None]
    outcome = [(job["state"], job["progress"]["failed"]) for job in final]
    errors = [{image["error"] for image in job["images"] if image["error"]} for job in final]
    assert outcome == [("succeeded", 0)] * (JOBS + 1), errors
    for j, job in enumerate(final[:JOBS]):
        assert_all_succeeded_once(service, job, (1024, 1024), folder=f"out/{j}")
    assert_all_succeeded_once(service, final[-1], (256, 256), folder="out/small")
    longest = max(waited(job) for job in final)
    assert longest > 3 * STALE_AFTER, f"the backlog was shorter than the scenario's: {longest} s"
