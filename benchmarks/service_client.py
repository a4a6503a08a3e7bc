"""The service benchmark's client side: submit jobs, follow them with the long-poll, load.

The client is one keep-alive HTTP/1.1 connection of the standard library's http.client
per thread: what the service costs, not what a client library adds (requests adds about
1 ms a request here; the latency phase shows it beside, on a row of its own).
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

FINAL = frozenset({"succeeded", "failed", "partially_failed", "cancelled"})
WAIT = 30  # the long-poll's ?wait=, its maximum
CLIENTS = 8

Images = list[dict[str, str]]


class Client:
    """One keep-alive connection to the API; JSON in, (status, JSON) out."""

    def __init__(self, url: str, timeout: float = WAIT + 60) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.timeout = timeout
        self.connection: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, body: Any = None, params: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        """Send a request (reconnecting if the server closed the connection); return its answer."""
        target = f"{path}?{urlencode(params)}" if params else path
        data = None if body is None else json.dumps(body).encode()
        headers = {} if data is None else {"Content-Type": "application/json"}
        for attempt in (1, 2):
            if self.connection is None:
                self.connection = http.client.HTTPConnection(self.host, self.port, self.timeout)
            try:
                self.connection.request(method, target, data, headers)
                response = self.connection.getresponse()
                raw = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()  # a keep-alive connection the server had closed: once more
                if attempt == 2:
                    raise
                continue
            if response.will_close:
                self.close()
            return response.status, json.loads(raw) if raw else None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def submit(client: Client, images: Images, chain: list[str], wait: float = 0) -> dict[str, Any]:
    """POST a job (with wait: ?wait=, answered once it finished); return its resource."""
    body = {"images": images, "operations": chain}
    status, job = client.request("POST", "/jobs", body, {"wait": wait} if wait else None)
    if status != 202:
        raise RuntimeError(f"POST /jobs answered {status}: {str(job)[:500]}")
    return job  # type: ignore[no-any-return]


def settle(client: Client, job: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Long-poll a job until it is final with nothing running; return it and the GETs made."""
    polls = 0
    while job["state"] not in FINAL or not job["finished_at"]:
        status, job = client.request("GET", f"/jobs/{job['id']}", params={"wait": WAIT})
        if status != 200:
            raise RuntimeError(f"GET /jobs/<id> answered {status}: {str(job)[:500]}")
        polls += 1
    return job, polls


def succeeded(job: dict[str, Any]) -> dict[str, Any]:
    """Return the job, or raise naming its errors unless it succeeded."""
    if job["state"] != "succeeded":
        errors = sorted({image["error"] for image in job["images"] if image["error"]})
        raise RuntimeError(f"job {job['id']} ended {job['state']}: {errors[:3]}")
    return job


def run_job(client: Client, images: Images, chain: list[str]) -> dict[str, Any]:
    """Submit a job and follow it to the end; fail loudly unless it succeeded."""
    job, _ = settle(client, submit(client, images, chain))
    return succeeded(job)


def run_jobs(url: str, jobs: list[tuple[Images, list[str]]]) -> None:
    """Run jobs from CLIENTS threads, each thread with its own connection, each job to its end."""
    local = threading.local()

    def one(job: tuple[Images, list[str]]) -> None:
        if not hasattr(local, "client"):
            local.client = Client(url)
        run_job(local.client, *job)

    with ThreadPoolExecutor(CLIENTS) as threads:
        list(threads.map(one, jobs))


def hammer(
    url: str, call: Callable[[Client, int], int], count: int, seconds: float
) -> tuple[float, list[float], int]:
    """Make up to count calls from CLIENTS threads within seconds; return rate, times, errors.

    call returns the answer's status.
    """
    numbers = itertools.count()
    times: list[float] = []
    errors = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        client = Client(url)
        while time.monotonic() < deadline and (n := next(numbers)) < count:
            started = time.perf_counter()
            ok = call(client, n) < 400
            spent = time.perf_counter() - started
            with lock:
                times.append(spent)
                errors += not ok
        client.close()

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
