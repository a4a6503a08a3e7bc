"""Fixtures shared by every test package: a real Redis, settings, stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support import RedisServer

SEED_IMAGES = Path(__file__).resolve().parents[1].parent / "shared" / "seed-images"
EXAMPLE_IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Start a real redis-server for the test session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """Return the URL of the session's Redis, emptied before each test."""
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    yield redis_server.url


@pytest.fixture
def seed_images() -> list[Path]:
    """Return four real photos: py-image-server's seeds, or the repository's own samples."""
    paths = sorted(SEED_IMAGES.glob("*.jpg")) or sorted(EXAMPLE_IMAGES.glob("*.jpg"))
    assert len(paths) == 4, f"expected four photos in {SEED_IMAGES} or {EXAMPLE_IMAGES}"
    return paths
