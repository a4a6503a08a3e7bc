"""Run imgserve the way a user does: real API and worker processes, real Redis, real files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port
from tests.system.service import Service, make_root, service_env


@pytest.fixture
def redis_service(redis_url: str, tmp_path: Path, seed_images: list[Path]) -> Iterator[Service]:
    """Run the API and one worker of 2 processes on the test Redis."""
    root = make_root(tmp_path, seed_images)
    port = free_port()
    service = Service(f"http://127.0.0.1:{port}", root, service_env(root, REDIS_URL=redis_url))
    service.spawn("api", "--host", "127.0.0.1", "--port", str(port), name="api")
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
