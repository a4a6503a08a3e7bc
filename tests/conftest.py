"""Fixtures shared by every test package: a real Redis, settings, stores."""

from __future__ import annotations

import shutil
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


# The repository's own samples have the seed photos' sizes, so they stand in for them
# (under the seed names) on a machine without ../shared/seed-images.
STAND_INS = {"cyclo1.jpg": "dawn.jpg", "cyclo2.jpg": "dusk.jpg", "cyclo3.jpg": "noon.jpg",
             "cyclo4.jpg": "night.jpg"}  # fmt: skip


@pytest.fixture(scope="session")
def seed_images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Return four real photos named cyclo1-4.jpg (1024x754, 1024x1024, 1024x1024, 512x512)."""
    if all((SEED_IMAGES / name).is_file() for name in STAND_INS):
        return [SEED_IMAGES / name for name in STAND_INS]
    folder = tmp_path_factory.mktemp("seed-stand-ins")
    for name, sample in STAND_INS.items():
        shutil.copy(EXAMPLE_IMAGES / sample, folder / name)
    return [folder / name for name in STAND_INS]
