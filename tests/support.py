"""Helpers the test packages share: a private redis-server, a recording queue, worker steps."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from worker.jobs import ImageRecord, Job, Start, new_job_id
from worker.liveness import Holder
from worker.store import Finish, JobStore, Move


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def need_redis_server() -> str:
    """Return the redis-server binary, or skip (fail in CI) when it is missing."""
    binary = shutil.which("redis-server")
    if binary is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI must run every Redis test", pytrace=False)
        pytest.skip(reason)
    return binary


class RedisServer:
    """A private redis-server process on a free port."""

    def __init__(self, directory: Path, *options: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.options = options
        """More redis-server arguments, after (and so over) the defaults."""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the server's URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers (again, after stop: same port and folder)."""
        self.process = subprocess.Popen(
            [need_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.directory), *self.options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        """Stop the server."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def client(self) -> redis.Redis:
        """Return a client of the server that gives up quickly."""
        return redis.Redis(port=self.port, socket_connect_timeout=2, socket_timeout=2)

    def shut_down(self) -> None:
        """Stop the server the way `redis-cli shutdown` does (the append-only file synced)."""
        assert self.process is not None
        client = self.client()
        client.shutdown()
        client.close()
        self.process.wait(timeout=10)

    def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash or the OOM killer does."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        """Stop the server with SIGSTOP: it keeps its connections but answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Let a frozen server go on (SIGCONT)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)


@dataclass
class RecordingQueue:
    """Stands in for the broker: records what would be enqueued."""

    sent: list[tuple[str, list[int]]] = field(default_factory=list)
    """Each enqueue: the job and the indices of all its tasks."""
    tasks: list[tuple[str, range]] = field(default_factory=list)
    """Each task sent: the job and its range of image indices."""
    fail: bool = False

    def enqueue(self, job_id: str, batches: list[range]) -> None:
        """Record one enqueue, or fail like a broker that is down."""
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((job_id, [n for batch in batches for n in batch]))
        self.tasks += [(job_id, batch) for batch in batches]


@contextlib.contextmanager
def small_tmpfs(folder: Path, size_kib: int) -> Iterator[Path]:
    """Mount a tmpfs of size_kib KiB on folder (tests run as root), unmounted afterwards."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (these tests run as root): {mounted.stderr}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def fill(folder: Path) -> Path:
    """Fill the file system of folder to the last byte with one file; return it."""
    filler = folder / "filler"
    with filler.open("ab", buffering=0) as out:
        for chunk in (1 << 20, 1 << 12, 1):
            with contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * chunk)
    return filler


OpenStore = Callable[..., JobStore]
"""Open a store, with the keyword arguments ttl, stale_after, time_limit, clock and admission
they take."""


def start_image(
    store: JobStore, job_id: str, index: int, *, max_attempts: int = 3, holder: Holder | None = None
) -> Start:
    """Start an image as a worker does (one step); return the store's decision."""
    move = Move(start=index, max_attempts=max_attempts, holder=holder)
    started = store.step(job_id, move).started
    assert started is not None
    return started


def finish_image(
    store: JobStore,
    job_id: str,
    index: int,
    *,
    error: str | None = None,
    timings: list[tuple[str, float]] | None = None,
) -> None:
    """Record a running image's outcome as a worker does (one step)."""
    store.step(job_id, Move(finish=Finish(index, error, timings or [])))


def claim_next(store: JobStore, job_id: str, *, count: int = 1, window: int = 1) -> range:
    """Take the job's next images for a task as a worker does (one step)."""
    return store.step(job_id, Move(claim=count, window=window)).claimed


def make_job(images: int = 3, created_at: float | None = None, *, folder: str = "out") -> Job:
    """Return a new job of n images, writing folder/<n>.jpg (one writer an output)."""
    return Job(
        id=new_job_id(),
        operations=[{"op": "resize", "factor": 0.5}],
        encode={"jpeg_quality": 90},
        images=[
            ImageRecord(f"in/{n}.jpg", f"{folder}/{n}.jpg", [f"{folder}/{n}.jpg"])
            for n in range(images)
        ],
        created_at=time.time() if created_at is None else created_at,
    )


class Clock:
    """A clock only the test moves, for a store's clock argument."""

    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        """Return the time now."""
        return self.now
