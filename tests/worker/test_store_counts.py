"""Stats cost what the counters cost, not a read of every job, and stay true as jobs expire."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis

from tests.support import OpenStore, finish_image, make_job, start_image
from worker.store import JobStore
from worker.store.redis_store import RedisJobStore
from worker.store.sqlite_store import SqliteJobStore

NONE = {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "partially_failed": 0,
        "cancelled": 0}  # fmt: skip


def test_jobs_are_counted_by_state_as_they_move(store: JobStore) -> None:
    done, cancelled, waiting = (make_job(images=n, folder=f"f{n}") for n in (1, 2, 3))
    for job in (done, cancelled, waiting):
        store.create(job, window=1)
    assert store.stats().jobs == {**NONE, "queued": 3}
    start_image(store, done.id, 0)
    assert store.stats().jobs == {**NONE, "queued": 2, "running": 1}
    finish_image(store, done.id, 0)
    store.cancel(cancelled.id)
    assert store.stats().jobs == {**NONE, "queued": 1, "succeeded": 1, "cancelled": 1}


def test_an_expired_job_leaves_the_counts_when_it_expires_not_when_swept(
    open_store: OpenStore,
) -> None:
    store = open_store(ttl=1)
    job = make_job(images=1)
    store.create(job, window=1)
    start_image(store, job.id, 0)
    assert store.stats().jobs == {**NONE, "running": 1}
    time.sleep(1.1)
    assert store.stats().jobs == NONE  # no create since, which deletes expired jobs
    store.create(make_job(images=1, folder="new"), window=1)
    assert store.stats().jobs == {**NONE, "queued": 1}


def test_redis_stats_are_seven_reads_in_one_round_trip_however_many_jobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = RedisJobStore(fakeredis.FakeRedis(), ttl=3600)
    for n in range(30):
        store.create(make_job(images=1, folder=f"f{n}"), window=1)
    sent: list[list[Any]] = []
    execute = redis.client.Pipeline.execute

    def recording(pipe: redis.client.Pipeline, raise_on_error: bool = True) -> list[Any]:
        sent.append([args[0] for args, _ in pipe.command_stack])
        return execute(pipe, raise_on_error)

    monkeypatch.setattr(redis.client.Pipeline, "execute", recording)
    assert store.stats().jobs == {**NONE, "queued": 30}
    assert sent == [["ZCOUNT"] * 6 + ["HGETALL"]]


def test_sqlite_stats_read_the_counts_and_the_expiry_index_never_every_job(
    tmp_path: Path,
) -> None:
    store = SqliteJobStore(tmp_path / "jobs.sqlite3", ttl=3600)
    for n in range(3):
        store.create(make_job(images=1, folder=f"f{n}"), window=1)
    connection = store.db.connection()
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    store.stats()
    connection.set_trace_callback(None)
    plans = [
        row["detail"]
        for statement in statements
        if statement.startswith("SELECT")
        for row in connection.execute(f"EXPLAIN QUERY PLAN {statement}")
    ]
    assert [plan for plan in plans if plan.startswith("SCAN jobs")] == []
    assert [plan for plan in plans if "jobs_by_expiry" in plan] == [
        "SEARCH jobs USING INDEX jobs_by_expiry (expires_at<?)"
    ]


def test_a_database_of_the_previous_version_is_counted_when_first_opened(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = SqliteJobStore(path, ttl=3600)
    running, waiting = make_job(images=1, folder="a"), make_job(images=1, folder="b")
    for job in (running, waiting):
        store.create(job, window=1)
    start_image(store, running.id, 0)
    store.db.connection().executescript(  # the tables the previous version had
        "DROP TABLE job_counts; DROP TABLE outputs; PRAGMA user_version = 0;"
    )
    store.close()
    again = SqliteJobStore(path, ttl=3600)
    assert again.stats().jobs == {**NONE, "queued": 1, "running": 1}
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()
    assert version == (2,)
