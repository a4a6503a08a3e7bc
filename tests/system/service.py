"""A running imgserve for system tests: its processes, its storage, a small client."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

FINAL = {"succeeded", "failed", "partially_failed", "cancelled"}


@dataclass
class Service:
    """A running imgserve: its URL, storage root and processes."""

    url: str
    root: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    token: str | None = None
    """The API key's token every request of the small client bears (None: anonymous)."""

    @property
    def headers(self) -> dict[str, str]:
        """Return the headers every request of the small client sends."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def spawn(self, *args: str, name: str) -> subprocess.Popen[bytes]:
        """Start an imgserve command in the background, logging to a file."""
        log = self.root.parent / f"{name}.log"
        self.logs.append(log)
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", *args],
                env=self.env,
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def submit(self, images: list[dict[str, str]], operations: list[Any]) -> dict[str, Any]:
        """Submit a job; return its resource."""
        response = requests.post(
            f"{self.url}/jobs",
            json={"images": images, "operations": operations},
            headers=self.headers,
            timeout=10,
        )
        assert response.status_code == 202, response.text
        return response.json()  # type: ignore[no-any-return]

    def get(self, job_id: str, wait: float = 0) -> dict[str, Any]:
        """Return a job."""
        response = requests.get(
            f"{self.url}/jobs/{job_id}",
            params={"wait": wait},
            headers=self.headers,
            timeout=wait + 10,
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait_until(
        self, job_id: str, done: Callable[[dict[str, Any]], bool], timeout: float = 120
    ) -> dict[str, Any]:
        """Long-poll a job until done(job) holds; return it."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(job_id, wait=min(5.0, max(0.1, deadline - time.monotonic())))
            if done(job):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"job {job_id} still {job['state']} after {timeout} s: {job}\n{self.tail()}"
                )

    def finish(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        """Wait for a job to reach a final state with nothing left running."""
        return self.wait_until(job_id, lambda j: j["state"] in FINAL and j["finished_at"], timeout)

    def wait_healthy(self, timeout: float = 60) -> None:
        """Wait until /healthz answers 200 (and a worker is up)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise AssertionError(
                        f"{process.args} exited with {process.returncode}\n{self.tail()}"
                    )
            try:
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"imgserve did not become healthy\n{self.tail()}")

    def wait_serving(self, timeout: float = 60) -> None:
        """Wait until /healthz answers at all (a service without workers may call itself unwell)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                requests.get(f"{self.url}/healthz", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.1)
        raise AssertionError(f"imgserve did not start serving\n{self.tail()}")

    def worker_children(self) -> list[psutil.Process]:
        """Return the live prefork pool processes of every worker."""
        children = []
        for process in self.processes:
            for child in psutil.Process(process.pid).children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if child.status() != psutil.STATUS_ZOMBIE and "worker" in child.cmdline():
                        children.append(child)
        return children

    def tail(self, lines: int = 40) -> str:
        """Return the end of every process log, for failure messages."""
        parts = []
        for log in self.logs:
            text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
            parts.append(f"--- {log.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop every process as Docker does (SIGTERM to it), then SIGKILL its whole group."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # leftovers, e.g. pool processes
            process.wait()


def make_root(base: Path, photos: list[Path]) -> Path:
    """Make a storage root with the photos in photos/."""
    root = base / "root"
    (root / "photos").mkdir(parents=True)
    for photo in photos:
        shutil.copy(photo, root / "photos" / photo.name)
    return root


def service_env(root: Path, **extra: str) -> dict[str, str]:
    """Return the environment of imgserve processes over root."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("IMGSERVE_") and k != "REDIS_URL"
    }
    env.update({"IMGSERVE_ROOT": str(root), "PYTHONUNBUFFERED": "1", **extra})
    repo = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, env.get("PYTHONPATH")) if p)
    return env


def redis_api(base: Path, photos: list[Path], redis_url: str) -> Service:
    """Start the API on the Redis at redis_url over a new root of photos (no worker yet)."""
    from tests.support import free_port

    root = make_root(base, photos)
    port = free_port()
    service = Service(f"http://127.0.0.1:{port}", root, service_env(root, REDIS_URL=redis_url))
    service.spawn("api", "--host", "127.0.0.1", "--port", str(port), name="api")
    return service
