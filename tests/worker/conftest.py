"""Fixtures of the worker tests: a store of each kind, settings over a root of real photos."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import fakeredis
import pytest
import redis

from tests.support import OpenStore
from worker.liveness import HARD_TIME_LIMIT, STALE_AFTER
from worker.settings import Settings
from worker.store import Admission, JobStore
from worker.store.protocol import UNLIMITED
from worker.store.redis_store import RedisJobStore
from worker.store.sqlite_store import SqliteJobStore


@pytest.fixture(params=["sqlite", "fakeredis", "redis"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Yield an opener of stores of each kind, on one empty file or server."""
    opened: list[SqliteJobStore | RedisJobStore] = []
    server = fakeredis.FakeServer()

    def opener(
        *,
        ttl: int = 3600,
        stale_after: float = STALE_AFTER,
        time_limit: float = HARD_TIME_LIMIT,
        clock: Callable[[], float] = time.time,
        admission: Admission = UNLIMITED,
    ) -> JobStore:
        store: SqliteJobStore | RedisJobStore
        limits = {"stale_after": stale_after, "time_limit": time_limit}
        if request.param == "sqlite":
            path = tmp_path / "jobs.sqlite3"
            store = SqliteJobStore(path, ttl=ttl, clock=clock, admission=admission, **limits)
        else:
            client = (
                fakeredis.FakeRedis(server=server)
                if request.param == "fakeredis"
                else redis.Redis.from_url(request.getfixturevalue("redis_url"))
            )
            store = RedisJobStore(client, ttl=ttl, clock=clock, admission=admission, **limits)
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> JobStore:
    """Return an empty store of each kind."""
    return open_store()


@pytest.fixture
def settings(tmp_path: Path, seed_images: list[Path]) -> Settings:
    """Return settings over a root holding the seed photos."""
    root = tmp_path / "root"
    root.mkdir()
    for photo in seed_images:
        shutil.copy(photo, root / photo.name)
    return Settings(root=root, state_dir=tmp_path / "state")
