"""Helpers the test packages share: a private redis-server, a recording queue."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis


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
        """options: more redis-server arguments, e.g. "--appendonly", "yes" (later ones win)."""
        self.port = free_port()
        self.directory = directory
        self.options = options
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
