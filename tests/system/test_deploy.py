"""The deployment files, proven without Docker: every command they run is run here.

Docker is not available where the tests run, so docker-compose.yml and the Dockerfile
are not trusted on sight. Their commands are parsed by the real CLIs, then run outside
Docker the way the containers would run them: against the test Redis instead of
``redis://redis:6379/0``, in a temporary directory instead of ``/data``, on free ports
instead of 8888 and 5555. Each service's health check is run the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import cv2
import pytest
import redis
import requests
import yaml
from celery.app.utils import find_app
from celery.bin.celery import celery as celery_command
from flower.options import default_options

import app.cli
import worker.celery_app
from tests.support import free_port, need_redis_server
from tests.system.service import Service, make_root, service_env
from worker.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
PYPROJECT: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())
IMAGE_SERVICES = ("api", "worker", "flower")
COMPOSE_REDIS_URL = "redis://redis:6379/0"
STORAGE_ROOT = "/data"
TASK_NAME = "imgserve.process_image"
T = TypeVar("T")
# What an operator puts in FLOWER_BASIC_AUTH to open Flower's HTTP API.
FLOWER_LOGIN = ("imgserve", "deploy-test")
# What an operator puts in IMGSERVE_API_KEYS, which compose requires for the API.
API_TOKEN = "deploy-test-token-0123456789"
OPERATOR = {"IMGSERVE_API_KEYS": f"deploy:{API_TOKEN}"}
REQUIRED = re.compile(r"\$\{(\w+):\?([^}]*)\}")


def dockerfile() -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions as (INSTRUCTION, arguments), continuations joined."""
    text = (REPO / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def instruction(keyword: str) -> list[str]:
    """Return the arguments of every Dockerfile instruction called keyword."""
    return [arguments for found, arguments in dockerfile() if found == keyword]


def copied() -> list[str]:
    """Return the sources of the Dockerfile's COPY instructions, in order."""
    return [source for arguments in instruction("COPY") for source in arguments.split()[:-1]]


def seconds(duration: str) -> float:
    """Return a compose duration such as "6m" or "1m30s" in seconds."""
    parts = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert parts is not None and duration, f"{duration!r} is not a compose duration"
    hours, minutes, secs = (int(part or 0) for part in parts.groups())
    return hours * 3600 + minutes * 60 + secs


def size_of(path: Path) -> tuple[int, int]:
    """Return an image file's width and height."""
    image = cv2.imread(str(path))
    assert image is not None, path
    return image.shape[1], image.shape[0]


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Return whether .dockerignore patterns leave path out of the build context."""
    ignored = False
    for pattern in patterns:
        include = pattern.startswith("!")
        glob = pattern.removeprefix("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(?:.*/)?").replace(r"\*", "[^/]*")
        parents = [str(Path(*Path(path).parts[:n])) for n in range(1, len(Path(path).parts) + 1)]
        if any(re.fullmatch(regex, candidate) for candidate in parents):
            ignored = not include
    return ignored


def dockerignore_patterns() -> list[str]:
    """Return the patterns of .dockerignore, without comments."""
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


@dataclass
class Local:
    """The compose file's world on this machine: the test Redis, a tmp /data, free ports."""

    redis_url: str
    root: Path
    ports: dict[str, str]

    def text(self, value: str) -> str:
        """Return a compose string with this machine's ports, storage root and Redis."""
        for port, free in self.ports.items():
            value = value.replace(port, free)
        return value.replace(STORAGE_ROOT, str(self.root)).replace(
            COMPOSE_REDIS_URL, self.redis_url
        )

    def argv(self, argv: list[str]) -> list[str]:
        """Return a compose command to run here, its program found like the image's PATH would."""
        program, *arguments = argv
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        found = shutil.which(program, path=path)
        assert found is not None, f"{program} is not installed"
        return [found, *(self.text(argument) for argument in arguments)]

    def env(self, name: str, operator: dict[str, str] | None = None) -> dict[str, str]:
        """Return a service's compose environment; a null value comes from the operator's shell."""
        env = {k: v for k, v in service_env(self.root).items() if not k.startswith("FLOWER_")}
        for key, value in SERVICES[name].get("environment", {}).items():
            if isinstance(value, str) and (required := REQUIRED.fullmatch(value)):
                variable, message = required.groups()  # compose refuses to start without it
                assert operator and operator.get(variable), f"{variable}: {message}"
                env[key] = operator[variable]
            elif value is not None:
                env[key] = self.text(str(value))
            elif operator and key in operator:  # compose leaves it unset when the shell does
                env[key] = operator[key]
        return env

    def health_check(
        self, name: str, operator: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a service's health check here, within the time compose would give it."""
        check = SERVICES[name]["healthcheck"]
        kind, *argv = check["test"]
        assert kind == "CMD"
        return subprocess.run(
            self.argv(argv),
            env=self.env(name, operator),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=seconds(check["timeout"]),
            check=False,
        )


def launch(
    service: Service, local: Local, name: str, operator: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a compose service's command here, logging to a file; service.stop() ends it."""
    log = service.root.parent / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            local.argv(SERVICES[name]["command"]),
            env=local.env(name, operator),
            cwd=local.root,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service.processes.append(process)
    service.logs.append(log)
    return process


def poll(service: Service, what: str, check: Callable[[], T], timeout: float = 30) -> T:
    """Call check() until it returns something truthy; fail with the logs after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        for process in service.processes:
            assert process.poll() is None, f"{process.args!r} exited\n{service.tail()}"
        try:
            found = check()
            if found:
                return found
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen after {timeout} s\n{service.tail()}")
        time.sleep(0.2)


@pytest.fixture
def local(redis_url: str, tmp_path: Path, seed_images: list[Path]) -> Local:
    """Return the compose world here: the test Redis and a storage root with the photos."""
    ports = {"8888": str(free_port()), "5555": str(free_port())}
    root = make_root(tmp_path, seed_images)  # laid out as the volumes: in/photos, out
    (root / "in").mkdir()
    (root / "photos").rename(root / "in" / "photos")
    (root / "out").mkdir()
    return Local(redis_url, root, ports)


@pytest.fixture
def stack(local: Local) -> Iterator[Service]:
    """Yield a Service to launch compose commands into; stop all of them afterwards."""
    service = Service(f"http://127.0.0.1:{local.ports['8888']}", local.root, {}, token=API_TOKEN)
    try:
        yield service
    finally:
        service.stop()


# The compose file against the real command lines.


@pytest.mark.parametrize(
    ("name", "runner", "expected"),
    [
        (
            "api",
            "run_api",
            {
                "command": "api",
                "host": "0.0.0.0",
                "port": 8888,
                "threads": 32,
                "allow_anonymous": False,
            },
        ),
        (
            "worker",
            "run_worker",
            {
                "command": "worker",
                "concurrency": None,
                "loglevel": "INFO",
            },
        ),
    ],
)
def test_each_imgserve_command_in_the_compose_file_parses_with_the_cli(
    monkeypatch: pytest.MonkeyPatch, name: str, runner: str, expected: dict[str, Any]
) -> None:
    seen: list[dict[str, Any]] = []

    def record(args: argparse.Namespace) -> int:
        seen.append({k: v for k, v in vars(args).items() if k != "run"})
        return 0

    monkeypatch.setattr(app.cli, runner, record)
    program, *arguments = SERVICES[name]["command"]
    assert program == "imgserve"
    assert app.cli.main(arguments) == 0
    assert seen == [expected]


def test_the_flower_command_loads_the_celery_app_and_flower_knows_its_options() -> None:
    program, app_option, app_path, subcommand, *options = SERVICES["flower"]["command"]
    assert (program, app_option, subcommand) == ("celery", "--app", "flower")
    assert find_app(app_path) is worker.celery_app.app
    assert "flower" in celery_command.commands
    assert options == ["--port=5555"]
    for option in options:
        assert option.removeprefix("--").partition("=")[0] in default_options


def test_every_image_service_finds_redis_and_the_storage_root_in_its_environment() -> None:
    for name in IMAGE_SERVICES:
        service = SERVICES[name]
        assert (service["build"], service["image"]) == (".", "imgserve:latest"), name
        assert service["environment"]["REDIS_URL"] == COMPOSE_REDIS_URL, name
        assert service["environment"]["IMGSERVE_ROOT"] == STORAGE_ROOT, name
        assert service["environment"]["IMGSERVE_INPUT_ROOT"] == f"{STORAGE_ROOT}/in", name
        assert service["environment"]["IMGSERVE_OUTPUT_ROOT"] == f"{STORAGE_ROOT}/out", name
        # Flower's dashboard lives on task events; each service sends its own.
        assert Settings.from_env(service["environment"]).task_events, name
        assert service["restart"] == "unless-stopped", name
    # redis://redis:6379 is the redis service on its default port.
    assert "--port" not in SERVICES["redis"]["command"]


def test_the_inputs_are_read_only_everywhere_and_only_the_workers_write_outputs() -> None:
    assert SERVICES["api"]["volumes"] == [
        f"inputs:{STORAGE_ROOT}/in:ro",
        f"outputs:{STORAGE_ROOT}/out:ro",
    ]
    assert SERVICES["worker"]["volumes"] == [
        f"inputs:{STORAGE_ROOT}/in:ro",
        f"outputs:{STORAGE_ROOT}/out",
    ]
    assert "volumes" not in SERVICES["flower"]
    assert COMPOSE["volumes"] == {"inputs": None, "outputs": None, "redis-data": None}


def test_compose_refuses_to_start_the_api_without_api_keys() -> None:
    keys = SERVICES["api"]["environment"]["IMGSERVE_API_KEYS"]
    assert REQUIRED.fullmatch(keys) is not None
    assert REQUIRED.fullmatch(keys).groups() == (  # type: ignore[union-attr]
        "IMGSERVE_API_KEYS",
        "set IMGSERVE_API_KEYS to name:token pairs (README, Security)",
    )
    for name in ("worker", "flower"):
        assert "IMGSERVE_API_KEYS" not in SERVICES[name]["environment"], name


def test_the_api_command_beyond_loopback_refuses_to_start_without_keys(local: Local) -> None:
    env = {k: v for k, v in local.env("api", OPERATOR).items() if k != "IMGSERVE_API_KEYS"}
    ran = subprocess.run(
        local.argv(SERVICES["api"]["command"]),
        env=env,
        cwd=local.root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ran.returncode == 2
    assert ran.stderr == (
        "imgserve: refusing to listen on 0.0.0.0 without API keys: set IMGSERVE_API_KEYS (or "
        "IMGSERVE_API_KEYS_FILE), or pass --allow-anonymous (IMGSERVE_ALLOW_ANONYMOUS=1) "
        "on a trusted network\n"
    )


def test_the_api_and_flower_publish_their_ports_and_workers_scale_freely() -> None:
    assert SERVICES["api"]["ports"] == ["8888:8888"]
    assert SERVICES["flower"]["ports"] == ["127.0.0.1:5555:5555"]
    assert "ports" not in SERVICES["worker"]
    assert "container_name" not in SERVICES["worker"]
    assert "ports" not in SERVICES["redis"]


def test_every_dependency_waits_for_a_healthy_service() -> None:
    for name, service in SERVICES.items():
        assert "healthcheck" in service, name
        for target, dependency in service.get("depends_on", {}).items():
            assert dependency == {"condition": "service_healthy"}, name
            assert "healthcheck" in SERVICES[target], (name, target)
    depends = {name: sorted(SERVICES[name].get("depends_on", {})) for name in SERVICES}
    assert depends == {"redis": [], "api": ["redis"], "worker": ["redis"], "flower": ["redis"]}


def test_redis_keeps_every_write_and_never_evicts() -> None:
    redis_service = SERVICES["redis"]
    assert redis_service["image"] == "redis:7"
    assert redis_service["command"] == [
        "redis-server", "--appendonly", "yes", "--maxmemory-policy", "noeviction"
    ]  # fmt: skip
    assert redis_service["volumes"] == ["redis-data:/data"]
    assert redis_service["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


def test_a_stopping_worker_has_longer_than_the_hard_time_limit_to_finish_its_image() -> None:
    environment = {k: str(v) for k, v in SERVICES["worker"]["environment"].items()}
    hard_limit = Settings.from_env(environment).hard_time_limit
    assert seconds(SERVICES["worker"]["stop_grace_period"]) > hard_limit


# The compose commands, run here.


def test_the_redis_command_starts_a_redis_that_appends_and_never_evicts(tmp_path: Path) -> None:
    program, *arguments = SERVICES["redis"]["command"]
    assert program == "redis-server"
    port = free_port()
    # Outside a container: a free port, loopback only, a tmp dir for the append-only file.
    here = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    argv = [need_redis_server(), *arguments, *here]
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, start_new_session=True)
    client = redis.Redis(port=port)
    try:
        deadline = time.monotonic() + 10
        while server.poll() is None and time.monotonic() < deadline:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        assert server.poll() is None, f"{argv} exited with {server.returncode}"
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        # The check runs inside the redis container, where the server is on the default port.
        _, program, *arguments = SERVICES["redis"]["healthcheck"]["test"]
        check = subprocess.run(
            [program, "-p", str(port), *arguments], capture_output=True, text=True, check=False
        )
        assert (check.returncode, check.stdout) == (0, "PONG\n")
    finally:
        client.close()
        server.terminate()
        server.wait(timeout=10)


def test_the_api_command_serves_healthz_and_passes_its_health_check(
    local: Local, stack: Service
) -> None:
    down = local.health_check("api", OPERATOR)
    assert down.returncode == 1 and "Connection refused" in down.stderr, down.stderr
    launch(stack, local, "api", OPERATOR)
    stack.wait_healthy()
    response = requests.get(f"{stack.url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "mode": "redis", "store": "ok", "broker": "ok"}
    up = local.health_check("api", OPERATOR)
    assert (up.returncode, up.stderr) == (0, "")


def test_the_worker_command_processes_a_job_and_passes_its_health_check(
    local: Local, stack: Service
) -> None:
    alone = local.health_check("worker")
    assert (alone.returncode, alone.stderr) == (1, "")
    launch(stack, local, "api", OPERATOR)
    launch(stack, local, "worker")
    stack.wait_healthy()
    photos = sorted((local.root / "in" / "photos").glob("*.jpg"))
    images = [{"input": f"photos/{p.name}", "output": f"out/{p.stem}.jpg"} for p in photos]
    job = stack.finish(stack.submit(images, ["resize=0.5"])["id"])
    assert job["state"] == "succeeded", job
    for photo, image in zip(photos, job["images"], strict=True):
        assert image["outputs"] == [f"out/{photo.stem}.jpg"]
        width, height = size_of(photo)
        assert size_of(local.root / "out" / image["outputs"][0]) == (width // 2, height // 2)
    up = local.health_check("worker")
    assert (up.returncode, up.stderr) == (0, "")


def test_flower_shows_the_worker_and_its_tasks_through_its_http_api(
    local: Local, stack: Service
) -> None:
    operator = {"FLOWER_BASIC_AUTH": ":".join(FLOWER_LOGIN)}
    flower = f"http://127.0.0.1:{local.ports['5555']}"
    launch(stack, local, "flower", operator)
    poll(stack, "Flower", lambda: requests.get(f"{flower}/healthcheck", timeout=5).ok)
    assert requests.get(f"{flower}/api/workers", timeout=5).status_code == 401
    launch(stack, local, "api", OPERATOR)
    worker = launch(stack, local, "worker")
    stack.wait_healthy()
    node = f"imgserve-{worker.pid}@{socket.gethostname()}"

    def api(path: str) -> Any:
        response = requests.get(f"{flower}/api/{path}", auth=FLOWER_LOGIN, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    # The worker's events reach Flower (then no task event can be missed) ...
    poll(stack, "the worker's events in Flower", lambda: api("workers?status=1") == {node: True})

    def inspected() -> dict[str, Any]:
        workers: dict[str, Any] = api("workers?refresh=1")
        return workers if {"registered", "active_queues"} <= set(workers.get(node, {})) else {}

    # ... and, once its remote control is up, it answers Flower's inspection.
    workers = poll(stack, "the worker in Flower's inspection", inspected)
    assert list(workers) == [node]
    assert TASK_NAME in workers[node]["registered"]
    assert [queue["name"] for queue in workers[node]["active_queues"]] == ["imgserve"]

    photos = sorted((local.root / "in" / "photos").glob("*.jpg"))
    images = [{"input": f"photos/{p.name}", "output": f"seen/{p.stem}.png"} for p in photos]
    job = stack.finish(stack.submit(images, ["resize=0.5"])["id"])
    assert job["state"] == "succeeded", job

    def succeeded() -> list[dict[str, Any]]:
        tasks = list(api(f"tasks?taskname={TASK_NAME}").values())
        done = len(tasks) == len(photos) and all(t["state"] == "SUCCESS" for t in tasks)
        return tasks if done else []

    tasks = poll(stack, "the job's tasks in Flower", succeeded)
    assert {task["worker"] for task in tasks} == {node}
    assert sorted(task["args"] for task in tasks) == [
        repr((job["id"], index, 1)) for index in range(len(photos))
    ]
    up = local.health_check("flower", operator)
    assert (up.returncode, up.stderr) == (0, "")


def test_flower_without_a_login_shows_its_dashboard_but_keeps_its_api_closed(
    local: Local, stack: Service
) -> None:
    flower = f"http://127.0.0.1:{local.ports['5555']}"
    launch(stack, local, "flower")
    poll(stack, "Flower", lambda: requests.get(f"{flower}/healthcheck", timeout=5).ok)
    assert requests.get(f"{flower}/workers", timeout=5).status_code == 200
    assert requests.get(f"{flower}/api/workers", timeout=5).status_code == 401
    shutdown = requests.post(f"{flower}/api/worker/shutdown/imgserve-1@host", timeout=5)
    assert shutdown.status_code == 401
    up = local.health_check("flower")
    assert (up.returncode, up.stderr) == (0, "")


# The Dockerfile against pyproject and the compose file.


def test_the_image_runs_the_compose_api_command_by_default() -> None:
    assert instruction("ENTRYPOINT") == []
    (cmd,) = instruction("CMD")
    assert json.loads(cmd) == SERVICES["api"]["command"]
    assert "command" in SERVICES["api"]  # explicit, so the default is run by the tests above


def test_the_image_commands_are_installed_by_the_package_it_installs() -> None:
    assert PYPROJECT["project"]["scripts"] == {"imgserve": "app.cli:main"}
    (install,) = [run for run in instruction("RUN") if "pip install" in run]
    extras = re.findall(r"\[([\w,-]+)\]", install)
    assert extras == ["flower"]
    assert PYPROJECT["project"]["optional-dependencies"]["flower"] == ["flower>=2.0"]
    assert "--no-cache-dir" in install
    assert "PIP_NO_CACHE_DIR=1" in " ".join(instruction("ENV"))


def test_the_image_copies_every_package_pyproject_installs() -> None:
    find = PYPROJECT["tool"]["setuptools"]["packages"]["find"]
    packages = [pattern.removesuffix("*") for pattern in find["include"]]
    assert copied() == ["pyproject.toml", PYPROJECT["project"]["readme"], *packages]


def test_the_build_context_holds_what_the_image_copies_and_nothing_else() -> None:
    patterns = dockerignore_patterns()
    for source in copied():
        files = [source] if (REPO / source).is_file() else [
            str(p.relative_to(REPO)) for p in (REPO / source).rglob("*.py")
        ]  # fmt: skip
        assert files, source
        for path in files:
            assert not dockerignored(path, patterns), path
    for path in [".venv/bin/python", ".git/HEAD", "tests/conftest.py", "examples/job.json",
                 "benchmarks/.data/x.jpg", "app/__pycache__/cli.cpython-311.pyc", "Makefile"]:  # fmt: skip
        assert dockerignored(path, patterns), path


def test_the_image_runs_as_a_non_root_user_in_the_storage_root() -> None:
    (base,) = instruction("FROM")
    assert base == "python:3.11-slim"
    assert PYPROJECT["project"]["requires-python"] == ">=3.11"
    keywords = [keyword for keyword, _ in dockerfile()]
    (user,) = instruction("USER")
    assert user not in ("root", "0")
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    assert instruction("WORKDIR") == [STORAGE_ROOT]
    assert instruction("EXPOSE") == ["8888 5555"]


def test_the_image_reads_inputs_and_writes_outputs_in_separate_roots() -> None:
    assert "IMGSERVE_INPUT_ROOT=/data/in IMGSERVE_OUTPUT_ROOT=/data/out" in " ".join(
        instruction("ENV")
    )
    (users,) = [run for run in instruction("RUN") if "useradd" in run]
    assert "mkdir -p /data/in /data/out" in users
