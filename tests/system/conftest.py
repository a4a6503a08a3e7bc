"""Run imgserve the way a user does: real API and worker processes, real Redis, real files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import RedisServer, free_port
from tests.system.service import Service, make_root, redis_api, service_env

StartRedis = Callable[..., RedisServer]
StartService = Callable[..., Service]


@pytest.fixture
def redis_service(redis_url: str, tmp_path: Path, seed_images: list[Path]) -> Iterator[Service]:
    """Run the API and one worker of 2 processes on the test Redis."""
    service = redis_api(tmp_path, seed_images, redis_url)
    service.spawn("worker", "--concurrency", "2", name="worker")
    try:
        service.wait_healthy()
        yield service
    finally:
        service.stop()


@pytest.fixture
def embedded_service(tmp_path: Path, seed_images: list[Path]) -> Iterator[Service]:
    """Run `imgserve up` on the embedded default (no server) with 2 worker processes."""
    root = make_root(tmp_path, seed_images)
    port = free_port()
    env = service_env(root, IMGSERVE_STATE_DIR=str(tmp_path / "state"))
    service = Service(f"http://127.0.0.1:{port}", root, env)
    service.spawn("up", "--host", "127.0.0.1", "--port", str(port), "--concurrency", "2", name="up")
    try:
        service.wait_healthy()
        yield service
    finally:
        service.stop()


@pytest.fixture(params=["redis", "embedded"])
def service(request: pytest.FixtureRequest) -> Service:
    """Yield imgserve on Redis and on the embedded default."""
    return request.getfixturevalue(f"{request.param}_service")  # type: ignore[no-any-return]


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[StartRedis]:
    """Return a function that starts a redis-server of the test's own with more arguments."""
    servers: list[RedisServer] = []

    def start(*options: str) -> RedisServer:
        directory = tmp_path / f"redis{len(servers)}"
        directory.mkdir()
        server = RedisServer(directory, *options)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.thaw()  # a frozen server would never see the SIGTERM
        server.stop()


@pytest.fixture
def redis_stacks(tmp_path: Path, seed_images: list[Path]) -> Iterator[StartService]:
    """Return a function that starts the API and workers on a Redis with extra settings."""
    started: list[Service] = []

    def start(url: str, *, workers: int = 1, concurrency: int = 2, **env: str) -> Service:
        root = make_root(tmp_path / f"stack{len(started)}", seed_images)
        port = free_port()
        service = Service(f"http://127.0.0.1:{port}", root, service_env(root, REDIS_URL=url, **env))
        started.append(service)
        service.spawn("api", "--host", "127.0.0.1", "--port", str(port), name="api")
        for n in range(workers):
            service.spawn("worker", "--concurrency", str(concurrency), name=f"worker{n}")
        if workers:
            service.wait_healthy()
        else:
            service.wait_serving()
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture
def embedded_ups(tmp_path: Path, seed_images: list[Path]) -> Iterator[StartService]:
    """Return a function that starts `imgserve up` (embedded, 2 worker processes) on a state dir."""
    started: list[Service] = []

    def start(state_dir: Path, **env: str) -> Service:
        root = make_root(tmp_path / f"up{len(started)}", seed_images)
        port = free_port()
        service = Service(
            f"http://127.0.0.1:{port}",
            root,
            service_env(root, IMGSERVE_STATE_DIR=str(state_dir), **env),
        )
        started.append(service)
        service.spawn(*up_args(service), name="up")
        service.wait_healthy()
        return service

    yield start
    for service in started:
        service.stop()


def up_args(service: Service) -> list[str]:
    """Return the arguments of `imgserve up` serving service's URL with 2 worker processes."""
    port = service.url.rpartition(":")[2]
    return ["up", "--host", "127.0.0.1", "--port", port, "--concurrency", "2"]
