"""A store whose back end is down, frozen, full or read-only says so (StoreUnavailable) and recovers."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support import RedisServer, free_port, make_job, start_image
from worker.store import Move, StoreTimedOut, StoreUnavailable
from worker.store.redis_store import RedisJobStore
from worker.store.sqlite_store import SqliteJobStore


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    """Yield a redis-server of this test's own, to freeze, fill or demote."""
    private = RedisServer(tmp_path)
    private.start()
    yield private
    if private.process is not None:
        private.process.send_signal(signal.SIGCONT)
    private.stop()


def test_a_full_redis_is_unavailable_until_it_has_room_again(server: RedisServer) -> None:
    store = RedisJobStore.from_url(server.url, ttl=3600)
    running = make_job(images=2, folder="a")
    store.create(running, window=2)
    admin = redis.Redis.from_url(server.url)
    admin.config_set("maxmemory", 1)
    for write in (
        lambda: store.create(make_job(images=1, folder="b"), window=1),
        lambda: store.step(running.id, Move(start=0)),
    ):
        with pytest.raises(StoreUnavailable) as raised:
            write()
        assert str(raised.value).startswith(
            "Redis is full (maxmemory): command not allowed when used memory > 'maxmemory'."
        )
    store.ping()  # it still answers
    admin.config_set("maxmemory", 0)
    assert store.create(make_job(images=1, folder="b"), window=1) == [0]
    assert start_image(store, running.id, 0) == "run"


def test_a_read_only_replica_is_unavailable_until_it_is_a_primary_again(
    server: RedisServer,
) -> None:
    store = RedisJobStore.from_url(server.url, ttl=3600)
    admin = redis.Redis.from_url(server.url)
    admin.replicaof("127.0.0.1", free_port())  # a primary that does not answer
    with pytest.raises(StoreUnavailable) as raised:
        store.create(make_job(images=1), window=1)
    assert str(raised.value).startswith(
        "Redis is a read-only replica for now: You can't write against a read only replica."
    )
    admin.replicaof("NO", "ONE")
    assert store.create(make_job(images=1), window=1) == [0]


def test_a_frozen_redis_times_out_in_two_seconds_and_answers_once_it_thaws(
    server: RedisServer,
) -> None:
    store = RedisJobStore.from_url(server.url, ttl=3600)
    job = make_job(images=1)
    store.create(job, window=1)
    assert server.process is not None
    server.process.send_signal(signal.SIGSTOP)  # as a stalled machine or a partition looks
    started = time.monotonic()
    with pytest.raises(StoreTimedOut) as raised:
        store.get(job.id)
    waited = time.monotonic() - started
    server.process.send_signal(signal.SIGCONT)
    assert str(raised.value) == "Redis did not answer in time: Timeout reading from socket"
    assert 1.9 < waited < 3  # one try of 2 s
    got = store.get(job.id)
    assert got is not None and got.state == "queued"


def test_an_unreachable_redis_is_unavailable_without_its_address_in_the_words() -> None:
    port = free_port()
    store = RedisJobStore.from_url(f"redis://127.0.0.1:{port}/0", ttl=60)
    with pytest.raises(StoreUnavailable) as raised:
        store.ping()
    assert str(raised.value) == (
        "Redis does not answer: Error 111 connecting to the server. Connection refused."
    )


def test_a_full_disk_makes_the_sqlite_store_unavailable_until_there_is_room(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = SqliteJobStore(path, ttl=3600)
    job = make_job(images=200)
    connection = store.db.connection()
    pages = connection.execute("PRAGMA page_count").fetchone()[0]
    connection.execute(f"PRAGMA max_page_count = {pages}")  # no room to grow, as on a full disk
    with pytest.raises(StoreUnavailable) as raised:
        store.create(job, window=1)
    assert str(raised.value) == "the job database cannot be used: database or disk is full"
    assert store.get(job.id) is None
    connection.execute("PRAGMA max_page_count = 1073741823")
    assert store.create(job, window=1) == [0]


def test_a_state_folder_that_cannot_be_made_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("a file where the folder should be")
    with pytest.raises(StoreUnavailable) as raised:
        SqliteJobStore(tmp_path / "state" / "jobs.sqlite3", ttl=3600)
    # No path: the sentence reaches clients in 503 answers.
    assert str(raised.value) == "the job database cannot be used: File exists"
