"""Load: 500 jobs from 8 concurrent clients against the API, 2 worker processes and Redis."""

from __future__ import annotations

import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin

import cv2
import numpy as np
import pytest
import requests

from tests.system.service import FINAL, Service

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

JOBS = 500
CLIENTS = 8
SETTLE_SECONDS = 120  # for every job to settle once all are submitted (~17 s on 2 cores)
LONG_POLL = 10.0
ONE_DONE = {"total": 1, "done": 1, "failed": 0, "cancelled": 0, "percent": 100.0}

# Small, fast chains, two of them fanning out into 4 outputs. Every job has one image.
CHAINS: list[list[str]] = [
    ["resize=0.1"],
    ["split", "resize=0.5"],
    ["grayscale", "flip=horizontal"],
    ["rotate=90", "blur=3"],
    ["crop=8,4,40,24", "sharpen=1"],
    ["split", "rotate=270"],
]
FORMATS = [".png", ".jpg", ".webp"]
TILE = "small/tile.png"  # 96x64, made by the test
PHOTO = "photos/cyclo4.jpg"  # 512x512, taken down to 64x64 first
PHOTO_PREFIX = ["resize=0.125"]


@dataclass
class Plan:
    """One job to submit: its image, its chain and the client that sends it."""

    n: int
    client: int
    input: str
    output: str
    operations: list[str]


@dataclass
class Submission:
    """What one POST /jobs answered, and how long it took."""

    plan: Plan
    status: int | None
    seconds: float
    body: Any
    error: str | None = None


def percentiles(samples: Iterable[float], points: Sequence[int] = (50, 95, 99)) -> dict[int, float]:
    """Return the nearest-rank percentiles of samples."""
    ordered = sorted(samples)
    if not ordered:
        raise ValueError("no samples")
    return {p: ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] for p in points}


def plans() -> list[Plan]:
    """Return the jobs of the run: chains, inputs and formats in turn, spread over the clients."""
    result = []
    for n in range(JOBS):
        photo = (n // len(CHAINS)) % 2 == 1
        chain = CHAINS[n % len(CHAINS)]
        client = n % CLIENTS
        result.append(
            Plan(
                n=n,
                client=client,
                input=PHOTO if photo else TILE,
                output=f"load/c{client}/{n:03d}{FORMATS[n % len(FORMATS)]}",
                operations=PHOTO_PREFIX + chain if photo else chain,
            )
        )
    return result


def expected_sizes(size: tuple[int, int], operations: list[str]) -> list[tuple[int, int]]:
    """Return the output sizes of the chains above, in output order, worked out by hand."""
    sizes = [size]
    for operation in operations:
        name, _, value = operation.partition("=")
        if name == "resize":
            f = float(value)
            sizes = [(max(1, round(w * f)), max(1, round(h * f))) for w, h in sizes]
        elif name == "split":
            sizes = [q for w, h in sizes for q in quadrants(w, h)]
        elif name == "rotate":
            sizes = [(h, w) for w, h in sizes]
        elif name == "crop":
            _, _, cw, ch = (int(v) for v in value.split(","))
            sizes = [(cw, ch) for _ in sizes]
    return sizes


def quadrants(w: int, h: int) -> list[tuple[int, int]]:
    """Return the sizes of an image's quadrants: TL, TR, BL, BR."""
    return [(w // 2, h // 2), (w - w // 2, h // 2), (w // 2, h - h // 2), (w - w // 2, h - h // 2)]


def output_names(output: str, k: int) -> list[str]:
    """Return the paths of k outputs of one image: as given, or {stem}_{n}{ext}."""
    if k == 1:
        return [output]
    path = PurePosixPath(output)
    return [str(path.with_name(f"{path.stem}_{n}{path.suffix}")) for n in range(1, k + 1)]


def image_size(path: Path) -> tuple[int, int]:
    """Return a decoded image file's width and height."""
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, f"{path} does not decode"
    return image.shape[1], image.shape[0]


class Client:
    """One load client: its own HTTP session, every status it was answered with counted."""

    def __init__(self, url: str, statuses: Counter[int], lock: threading.Lock) -> None:
        self.url = url
        self.session = requests.Session()
        self.statuses = statuses
        self.lock = lock

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request to a path or link of the API and count its status."""
        response = self.session.request(method, urljoin(self.url, path), **kwargs)
        with self.lock:
            self.statuses[response.status_code] += 1
        return response

    def submit(self, plan: Plan) -> Submission:
        """POST one job; return what was answered and how long it took."""
        body = {
            "images": [{"input": plan.input, "output": plan.output}],
            "operations": plan.operations,
        }
        start = time.perf_counter()
        try:
            response = self.request("POST", "/jobs", json=body, timeout=30)
        except requests.RequestException as exc:
            return Submission(plan, None, time.perf_counter() - start, None, repr(exc))
        seconds = time.perf_counter() - start
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text
        return Submission(plan, response.status_code, seconds, answer)

    def settle(self, job_id: str, deadline: float) -> dict[str, Any]:
        """Long-poll a job until it is final with nothing running, or the deadline passes."""
        while True:
            left = deadline - time.monotonic()
            wait = min(LONG_POLL, max(0.0, left))
            response = self.request(
                "GET", f"/jobs/{job_id}", params={"wait": wait}, timeout=wait + 30
            )
            assert response.status_code == 200, (job_id, response.status_code, response.text)
            job: dict[str, Any] = response.json()
            if (job["state"] in FINAL and job["finished_at"]) or left <= 0:
                return job


def run_in_clients(clients: list[Client], work: Callable[[int, Client], list[Any]]) -> list[Any]:
    """Run work(k, client) for every client at once, started together; return all results."""
    barrier = threading.Barrier(len(clients))

    def run(k: int) -> list[Any]:
        barrier.wait(timeout=30)
        return work(k, clients[k])

    with ThreadPoolExecutor(len(clients)) as pool:
        return [r for rs in pool.map(run, range(len(clients))) for r in rs]


def moment(iso: str) -> datetime:
    """Parse a job resource's ISO 8601 UTC time."""
    return datetime.fromisoformat(iso)


def test_500_jobs_from_8_clients_all_succeed_with_every_output_once(
    redis_service: Service, request: pytest.FixtureRequest
) -> None:
    service = redis_service
    (service.root / "small").mkdir()
    tile = np.random.default_rng(5).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    assert cv2.imwrite(str(service.root / TILE), tile)
    base = {TILE: image_size(service.root / TILE), PHOTO: image_size(service.root / PHOTO)}
    assert base == {TILE: (96, 64), PHOTO: (512, 512)}

    statuses: Counter[int] = Counter()
    lock = threading.Lock()
    clients = [Client(service.url, statuses, lock) for _ in range(CLIENTS)]
    by_client: dict[int, list[Plan]] = {k: [] for k in range(CLIENTS)}
    for plan in plans():
        by_client[plan.client].append(plan)

    # Every client sends its share back to back, all at once.
    started = time.perf_counter()
    submissions: list[Submission] = run_in_clients(
        clients, lambda k, client: [client.submit(plan) for plan in by_client[k]]
    )
    submit_wall = time.perf_counter() - started

    server_errors = [s for s in submissions if s.status is not None and s.status >= 500]
    refused = [s for s in submissions if s.status != 202]
    assert len(submissions) == JOBS
    assert len(server_errors) == 0, (
        f"{len(server_errors)} submissions got a 5xx, e.g. {server_errors[:3]}\n{service.tail()}"
    )
    assert refused == [], f"{len(refused)} submissions not accepted, e.g. {refused[:5]}"
    ids = [s.body["id"] for s in submissions]
    assert len(set(ids)) == JOBS, "two submissions were given the same job id"

    # Every client long-polls its own jobs until they settle.
    deadline = time.monotonic() + SETTLE_SECONDS
    plan_of = {s.body["id"]: s.plan for s in submissions}
    jobs: list[dict[str, Any]] = run_in_clients(
        clients,
        lambda k, client: [
            client.settle(s.body["id"], deadline) for s in submissions if s.plan.client == k
        ],
    )
    for client in clients:
        client.session.close()

    unsettled = [j for j in jobs if j["state"] != "succeeded" or not j["finished_at"]]
    assert unsettled == [], (
        f"{len(unsettled)} of {JOBS} jobs did not succeed: "
        f"{Counter(j['state'] for j in unsettled)}, e.g. {unsettled[:3]}\n{service.tail()}"
    )

    # Every output the jobs name exists once, decodes, and has the size the chain gives;
    # nothing else (no temporary file, no stray name) is in the output folder.
    named: Counter[str] = Counter()
    for job in jobs:
        plan = plan_of[job["id"]]
        assert job["progress"] == ONE_DONE, job
        (image,) = job["images"]
        sizes = expected_sizes(base[plan.input], plan.operations)
        assert image["state"] == "succeeded" and image["error"] is None, job
        assert image["outputs"] == output_names(plan.output, len(sizes)), job
        named.update(image["outputs"])
        got = [image_size(service.root / output) for output in image["outputs"]]
        assert got == sizes, (plan, got)
    assert [path for path, count in named.items() if count > 1] == []
    on_disk = [
        str(path.relative_to(service.root))
        for path in (service.root / "load").rglob("*")
        if not path.is_dir()
    ]
    assert sorted(on_disk) == sorted(named), set(on_disk) ^ set(named)

    # The listing pages through every job once, newest first.
    listed: list[dict[str, Any]] = []
    lister = Client(service.url, statuses, lock)
    page: str | None = "/jobs?limit=100"
    while page is not None:
        assert len(listed) <= JOBS, "the listing does not end"
        response = lister.request("GET", page, timeout=30)
        assert response.status_code == 200, response.text
        listed += response.json()["jobs"]
        page = response.json()["next"]
    lister.session.close()
    listed_ids = [job["id"] for job in listed]
    assert len(listed_ids) == len(set(listed_ids)) == JOBS
    assert set(listed_ids) == set(ids)
    created = [moment(job["created_at"]) for job in listed]
    assert created == sorted(created, reverse=True), "the listing is not newest first"
    assert {job["state"] for job in listed} == {"succeeded"}

    assert not [code for code in statuses if code >= 500], statuses

    # Report: submit latency as the clients saw it; throughput as the service recorded it.
    latency = percentiles(s.seconds * 1000 for s in submissions)
    first = min(moment(job["created_at"]) for job in jobs)
    last = max(moment(job["finished_at"]) for job in jobs)
    busy = (last - first).total_seconds()
    report = {
        "jobs": JOBS,
        "outputs": len(named),
        "clients": CLIENTS,
        "submit_p50_ms": round(latency[50], 1),
        "submit_p95_ms": round(latency[95], 1),
        "submit_p99_ms": round(latency[99], 1),
        "submit_max_ms": round(max(s.seconds for s in submissions) * 1000, 1),
        "submit_jobs_per_s": round(JOBS / submit_wall, 1),
        "seconds_to_all_succeeded": round(busy, 2),
        "jobs_per_s": round(JOBS / busy, 1),
        "outputs_per_s": round(len(named) / busy, 1),
    }
    # The record_property fixture would warn (an error here) under --junitxml's xunit2.
    request.node.user_properties.extend(report.items())
    print(
        f"\nload: {JOBS} jobs ({len(named)} outputs) from {CLIENTS} clients, API + 2 worker"
        f" processes + Redis\n  submit latency p50 {report['submit_p50_ms']} ms,"
        f" p95 {report['submit_p95_ms']} ms, p99 {report['submit_p99_ms']} ms,"
        f" max {report['submit_max_ms']} ms; {report['submit_jobs_per_s']} submissions/s\n"
        f"  all succeeded {busy:.1f} s after the first was created:"
        f" {report['jobs_per_s']} jobs/s, {report['outputs_per_s']} outputs/s"
    )
