"""The service benchmark's processes: a private redis-server, imgserve's API and workers.

Also the yardstick: a tiny Celery app with one empty task and a Redis result backend, run by
its own worker on the same Redis (another database), so that imgserve's small-job latency can
be set beside the round trip of a task that does nothing. Its worker imports this module as
``benchmarks.service_processes:echo_app``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import redis
import requests
from celery import Celery

REPO = Path(__file__).resolve().parents[1]
ECHO_QUEUE = "bench-echo"
ECHO_URL_VARIABLE = "BENCH_ECHO_REDIS_URL"

echo_app = Celery("bench-echo")
echo_app.conf.update(
    broker_url=os.environ.get(ECHO_URL_VARIABLE, "redis://127.0.0.1:6379/1"),
    result_backend=os.environ.get(ECHO_URL_VARIABLE, "redis://127.0.0.1:6379/1"),
    broker_connection_retry_on_startup=True,
    task_default_queue=ECHO_QUEUE,
    task_serializer="json",
    accept_content=["json"],
    result_serializer="json",
    # The reliability settings imgserve runs with, so the two differ only in the task's work.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_hijack_root_logger=False,
)


@echo_app.task(name="bench.empty")
def empty() -> None:
    """Do nothing: the task whose round trip is Celery's and Redis's own cost."""


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def status_kb(pid: int, field: str) -> int:
    """Return a /proc/<pid>/status memory field (VmRSS, VmHWM) in kB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"{field} is not in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    """Reset a process's peak RSS (VmHWM) to its current RSS."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def cpu_seconds(pids: list[int]) -> float:
    """Return the user plus system CPU seconds the processes have used so far."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def machine_busy_seconds() -> float:
    """Return the CPU seconds every process on the machine has used since boot (/proc/stat)."""
    ticks = [int(n) for n in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    # user nice system idle iowait irq softirq steal: all but idle and iowait is busy (steal
    # too: a neighbouring VM ran on our core).
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """Return the CPU seconds this process and every process it started have used."""
    me = psutil.Process()
    pids = [me.pid] + [child.pid for child in me.children(recursive=True)]
    return cpu_seconds(pids)


class Others:
    """Measures how many cores processes other than the benchmark's own kept busy."""

    def __init__(self) -> None:
        self.start()

    def start(self) -> None:
        """Start a new measurement."""
        self.wall, self.busy, self.own = time.monotonic(), machine_busy_seconds(), own_seconds()

    def cores(self) -> float:
        """Return the cores others used on average since start()."""
        wall = time.monotonic() - self.wall
        foreign = machine_busy_seconds() - self.busy - (own_seconds() - self.own)
        return max(0.0, foreign / wall) if wall > 0 else 0.0


def wait_for_quiet(limit: float, cores: float = 0.3) -> float:
    """Wait up to limit seconds for others to use under cores for a second; return the wait."""
    started = time.monotonic()
    others = Others()
    while time.monotonic() - started < limit:
        time.sleep(1.0)
        if others.cores() < cores:
            break
        others.start()
    return time.monotonic() - started


class Processes:
    """redis-server, the API and the workers, each in its own session, logging to work/."""

    def __init__(self, work: Path, root: Path) -> None:
        self.work = work
        self.root = root
        self.redis_port = free_port()
        self.api_port = free_port()
        self.redis: subprocess.Popen[bytes] | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: list[subprocess.Popen[bytes]] = []
        self.echo: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Return the API's base URL."""
        return f"http://127.0.0.1:{self.api_port}"

    def redis_url(self, db: int = 0) -> str:
        """Return the URL of a database of the private Redis."""
        return f"redis://127.0.0.1:{self.redis_port}/{db}"

    def env(self) -> dict[str, str]:
        """Return the environment of imgserve's processes."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("IMGSERVE_") and k not in ("REDIS_URL", ECHO_URL_VARIABLE)
        }
        env.update(
            REDIS_URL=self.redis_url(0),
            IMGSERVE_ROOT=str(self.root),
            IMGSERVE_STATE_DIR=str(self.work / "state"),
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p),
        )
        return env

    def spawn(self, argv: list[str], name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        """Start a command in its own session, logging to work/<name>.log."""
        with (self.work / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                argv,
                env=env,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def start_redis(self) -> None:
        """Start redis-server (no persistence) and wait until it answers."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit(
                "the service benchmark needs redis-server (apt-get install redis-server)"
            )
        self.redis = self.spawn(
            [binary, "--port", str(self.redis_port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.work)],
            "redis",
            dict(os.environ),
        )  # fmt: skip
        client = redis.Redis(port=self.redis_port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.redis.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        client.close()

    def start_api(self) -> None:
        """Start the API (waitress, its default 32 threads) and wait until /healthz answers."""
        argv = [sys.executable, "-m", "app.cli", "api", "--host", "127.0.0.1"]
        self.api = self.spawn([*argv, "--port", str(self.api_port)], "api", self.env())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.api.poll() is not None:
                raise RuntimeError(f"the API exited; see {self.work / 'api.log'}")
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("the API did not become healthy")

    def start_workers(self, concurrency: int) -> None:
        """Start one imgserve worker with this many pool processes (stopping any before)."""
        self.stop_workers()
        argv = [sys.executable, "-m", "app.cli", "worker", f"--concurrency={concurrency}"]
        self.workers = [self.spawn(argv, "worker", self.env())]
        deadline = time.monotonic() + 60
        while len(self.pool_pids()) < concurrency:
            if time.monotonic() > deadline or self.workers[0].poll() is not None:
                raise RuntimeError(f"the worker did not start; see {self.work / 'worker.log'}")
            time.sleep(0.1)

    def start_echo(self) -> None:
        """Start the empty task's worker: prefork, 2 processes, on Redis database 1."""
        env = {**self.env(), ECHO_URL_VARIABLE: self.redis_url(1)}
        argv = [sys.executable, "-m", "celery", "-A", "benchmarks.service_processes:echo_app",
                "worker", "--pool=prefork", "--concurrency=2", "--loglevel=INFO",
                f"--hostname=bench-echo-{os.getpid()}@%h"]  # fmt: skip
        self.echo = self.spawn(argv, "echo", env)
        echo_app.conf.update(broker_url=self.redis_url(1), result_backend=self.redis_url(1))

    def pool_pids(self) -> list[int]:
        """Return the pids of the workers' prefork pool processes."""
        pids = []
        for worker in self.workers:
            with contextlib.suppress(psutil.Error):
                pids += [child.pid for child in psutil.Process(worker.pid).children()]
        return pids

    def service_pids(self) -> dict[str, list[int]]:
        """Return the pids of each part of the service, for CPU accounting."""
        return {
            "pool": self.pool_pids(),
            "worker main": [worker.pid for worker in self.workers],
            "API": [self.api.pid] if self.api else [],
            "Redis": [self.redis.pid] if self.redis else [],
        }

    def stop_workers(self) -> None:
        """Stop the workers (a warm shutdown), then kill anything left of them."""
        for worker in self.workers:
            _stop(worker)
        self.workers = []

    def stop(self) -> None:
        """Stop every process this benchmark started."""
        self.stop_workers()
        for process in (self.echo, self.api, self.redis):
            if process is not None:
                _stop(process)
        self.echo = self.api = self.redis = None


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a process, wait, then SIGKILL its session (pool processes it left behind)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
