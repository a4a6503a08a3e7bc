"""The service benchmark's client side: submit jobs, follow them with the long-poll, load."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import requests

FINAL = frozenset({"succeeded", "failed", "partially_failed", "cancelled"})
WAIT = 30  # the long-poll's ?wait=, its maximum
CLIENTS = 8

Images = list[dict[str, str]]


def submit(
    session: requests.Session, url: str, images: Images, chain: list[str], wait: float = 0
) -> dict[str, Any]:
    """POST a job (with wait: ?wait=, answered once it finished); return its resource."""
    body = {"images": images, "operations": chain}
    params = {"wait": wait} if wait else None
    response = session.post(f"{url}/jobs", json=body, params=params, timeout=60 + wait)
    if response.status_code != 202:
        raise RuntimeError(f"POST /jobs answered {response.status_code}: {response.text[:500]}")
    return response.json()  # type: ignore[no-any-return]


def settle(session: requests.Session, url: str, job: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Long-poll a job until it is final with nothing running; return it and the GETs made."""
    polls = 0
    while job["state"] not in FINAL or not job["finished_at"]:
        response = session.get(f"{url}/jobs/{job['id']}", params={"wait": WAIT}, timeout=WAIT + 30)
        response.raise_for_status()
        job, polls = response.json(), polls + 1
    return job, polls


def succeeded(job: dict[str, Any]) -> dict[str, Any]:
    """Return the job, or raise naming its errors unless it succeeded."""
    if job["state"] != "succeeded":
        errors = sorted({image["error"] for image in job["images"] if image["error"]})
        raise RuntimeError(f"job {job['id']} ended {job['state']}: {errors[:3]}")
    return job


def run_job(
    session: requests.Session, url: str, images: Images, chain: list[str]
) -> dict[str, Any]:
    """Submit a job and follow it to the end; fail loudly unless it succeeded."""
    job, _ = settle(session, url, submit(session, url, images, chain))
    return succeeded(job)


def run_jobs(url: str, jobs: list[tuple[Images, list[str]]]) -> None:
    """Run jobs from CLIENTS threads, each thread with its own session, each job to its end."""
    local = threading.local()

    def one(job: tuple[Images, list[str]]) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        run_job(local.session, url, *job)

    with ThreadPoolExecutor(CLIENTS) as threads:
        list(threads.map(one, jobs))


def hammer(
    call: Callable[[requests.Session, int], requests.Response], count: int, seconds: float
) -> tuple[float, list[float], int]:
    """Make up to count calls from CLIENTS threads within seconds; return rate, times, errors."""
    numbers = itertools.count()
    times: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        with requests.Session() as session:
            while time.monotonic() < deadline and (n := next(numbers)) < count:
                started = time.perf_counter()
                ok = call(session, n).status_code < 400
                spent = time.perf_counter() - started
                with lock:
                    times.append(spent)
                    errors += not ok

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as threads:
        for future in [threads.submit(client) for _ in range(CLIENTS)]:
            future.result()
    return len(times) / (time.perf_counter() - started), times, errors


def timestamp(iso: str) -> float:
    """Return the Unix time of a job resource's ISO 8601 timestamp."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def percentile(samples: Sequence[float], p: float) -> float:
    """Return the nearest-rank percentile of samples."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]
