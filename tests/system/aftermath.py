"""What a job must look like once a fault is over: settled, every output once, nothing stranded."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import requests

from tests.system.service import FINAL, Service

STRANDED_AFTER = 30.0
"""Seconds after a fault ends within which a job that stopped moving is called stranded."""


@dataclass
class Answer:
    """What one request got back, and how long it took."""

    seconds: float
    response: requests.Response | None
    error: str | None = None

    @property
    def status(self) -> int | str:
        """Return the status code, or "no answer" when the request failed."""
        return "no answer" if self.response is None else self.response.status_code


def timed(method: str, url: str, *, timeout: float = 10, **kwargs: Any) -> Answer:
    """Send one request; return its answer, or the error that stopped it, and its seconds."""
    started = time.monotonic()
    try:
        response = requests.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        return Answer(time.monotonic() - started, None, f"{type(exc).__name__}: {exc}")
    return Answer(time.monotonic() - started, response)


def read_job(service: Service, job_id: str, wait: float = 0) -> tuple[str, dict[str, Any] | None]:
    """Read a job, tolerating a service that is down; return what it answered, and the job."""
    url = f"{service.url}/jobs/{job_id}"
    answer = timed("GET", url, params={"wait": wait}, timeout=wait + 10)
    if answer.response is None:
        return f"no answer ({answer.error})", None
    if answer.status == 200:
        return "200", answer.response.json()
    if answer.status == 503:
        return f"503 {answer.response.text[:300]}", None
    raise AssertionError(f"GET {url} answered {answer.status}: {answer.response.text}")


def where(job: dict[str, Any] | None) -> str:
    """Describe the images of a job that are not done yet, for failure messages."""
    if job is None:
        return "never read"
    by_state: dict[str, list[int]] = {}
    for n, image in enumerate(job["images"]):
        by_state.setdefault(image["state"], []).append(n)
    unsettled = {s: by_state[s] for s in ("running", "queued") if s in by_state}
    return f"{job['state']}, {job['progress']}, unsettled images {unsettled}"


def settle(
    service: Service,
    job_id: str,
    *,
    fault_ended: float,
    timeout: float = 120,
    alive: Sequence[subprocess.Popen[bytes]] = (),
) -> dict[str, Any]:
    """Follow a job until it is final; fail as soon as it is stranded after the fault ended.

    Stranded: an image running, or the whole job standing still, for STRANDED_AFTER s
    after the fault ended (every image of these tests takes well under a second).
    alive: processes that must not exit meanwhile (the API and the workers).
    """
    deadline = time.monotonic() + timeout
    seen: list[str] | None = None
    moved = fault_ended
    running_since: dict[int, float] = {}
    job: dict[str, Any] | None = None
    answer = "nothing yet"
    while True:
        for process in alive:
            if process.poll() is not None:
                raise AssertionError(
                    f"{process.args} exited with {process.returncode} while job {job_id} was "
                    f"{where(job)}\n{service.tail()}"
                )
        answer, latest = read_job(service, job_id, wait=2)
        now = time.monotonic()
        if latest is not None:
            job = latest
            if job["state"] in FINAL and job["finished_at"]:
                return job
            states = [image["state"] for image in job["images"]]
            if states != seen:
                seen, moved = states, max(now, fault_ended)
            running = {n for n, state in enumerate(states) if state == "running"}
            running_since = {n: running_since.get(n, max(now, fault_ended)) for n in running}
        stuck = sorted(n for n, since in running_since.items() if now - since > STRANDED_AFTER)
        if stuck or now - moved > STRANDED_AFTER:
            what = f"images {stuck} running" if stuck else "nothing moved"
            raise AssertionError(
                f"job {job_id} stranded: {what} for {STRANDED_AFTER:.0f} s after the fault ended: "
                f"{where(job)}; last answer {answer}\n{service.tail(15)}"
            )
        if now > deadline:
            raise AssertionError(
                f"job {job_id} not final {timeout:.0f} s on: {where(job)}; last answer {answer}"
                f"\n{service.tail(15)}"
            )
        if latest is None:
            time.sleep(0.2)


def files_under(folder: Path) -> list[str]:
    """Return every file below folder (hidden and temporary ones too), relative to it."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def assert_all_succeeded_once(
    service: Service, job: dict[str, Any], size: tuple[int, int], *, folder: str = "out"
) -> None:
    """Assert that a job succeeded and wrote each image's one output once, whole, of size WxH.

    Its outputs are the only files in folder: nothing doubled, nothing half-written left.
    """
    images = job["images"]
    failed_on_disk = [
        (n, image["error"])
        for n, image in enumerate(images)
        if image["state"] == "failed" and (service.root / image["output"]).exists()
    ]
    assert failed_on_disk == [], f"failed images whose output is on disk: {failed_on_disk}"
    unsucceeded = [(n, i["state"], i["error"]) for n, i in enumerate(images) if i["state"] != "succeeded"]  # fmt: skip
    assert (job["state"], unsucceeded) == ("succeeded", []), where(job)
    assert [image["outputs"] for image in images] == [[image["output"]] for image in images]
    expected = sorted(str(Path(image["output"]).relative_to(folder)) for image in images)
    assert files_under(service.root / folder) == expected
    for image in images:
        written = cv2.imread(str(service.root / image["output"]))
        assert written is not None, f"{image['output']} does not decode"
        assert (written.shape[1], written.shape[0]) == size, image["output"]
