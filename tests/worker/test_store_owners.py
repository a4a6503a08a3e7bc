"""What a job's owner and inputs change in every store: listings, limits, busy inputs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import redis

from tests.support import Clock, OpenStore, finish_image, make_job, start_image
from worker.jobs import ImageRecord, Job
from worker.store import Admission, InputInUse, TooManyActive
from worker.store.redis_store import RedisJobStore
from worker.store.sqlite_store import SqliteJobStore


def owned(owner: str | None, *, folder: str, inputs: list[str] | None = None) -> Job:
    """Return a new job of owner writing folder/<n>.jpg from the inputs (default in/<n>.jpg)."""
    job = make_job(images=len(inputs) if inputs else 2, folder=folder)
    if inputs:
        job.images = [
            ImageRecord(path, f"{folder}/{n}.jpg", [f"{folder}/{n}.jpg"])
            for n, path in enumerate(inputs)
        ]
    job.owner = owner
    return job


def test_each_owner_lists_its_own_jobs_newest_first(open_store: OpenStore) -> None:
    store = open_store()
    alice = [owned("alice", folder=f"a{n}") for n in range(2)]
    bob, anonymous = owned("bob", folder="b"), owned(None, folder="c")
    for n, job in enumerate([alice[0], bob, alice[1], anonymous]):
        job.created_at += n
        store.create(job, window=1)
    assert [j.id for j in store.list_jobs(limit=10, offset=0, owner="alice")] == [
        alice[1].id,
        alice[0].id,
    ]
    assert [j.id for j in store.list_jobs(limit=10, offset=0, owner="bob")] == [bob.id]
    assert len(store.list_jobs(limit=10, offset=0)) == 4
    got = store.get(alice[0].id)
    assert got is not None and got.owner == "alice"


def test_an_owner_at_its_active_limit_is_refused_until_one_finishes(open_store: OpenStore) -> None:
    store = open_store(admission=Admission(max_active=2))
    first, second = owned("alice", folder="a"), owned("alice", folder="b")
    store.create(first, window=2)
    store.create(second, window=2)
    with pytest.raises(TooManyActive) as refused:
        store.create(owned("alice", folder="c"), window=2)
    assert str(refused.value) == "key 'alice' has 2 queued or running jobs, as many as it may"
    assert len(store.list_jobs(limit=10, offset=0)) == 2
    store.create(owned("bob", folder="d"), window=2)
    store.create(owned(None, folder="e"), window=2)
    for index in range(2):
        start_image(store, first.id, index)
        finish_image(store, first.id, index)
    store.create(owned("alice", folder="c"), window=2)


def test_an_output_over_an_active_jobs_input_is_refused_until_it_settles(
    open_store: OpenStore,
) -> None:
    store = open_store()
    reader = owned(None, folder="out", inputs=["photos/a.jpg", "photos/b.jpg"])
    store.create(reader, window=2)
    writer = owned(None, folder="photos", inputs=["x.jpg", "y.jpg"])
    writer.images[1].outputs = ["./photos//b.jpg"]
    with pytest.raises(InputInUse) as refused:
        store.create(writer, window=2)
    assert (refused.value.index, refused.value.output, refused.value.other_job) == (
        1,
        "./photos//b.jpg",
        reader.id,
    )
    store.cancel(reader.id)
    store.create(writer, window=2)


def test_with_separate_roots_an_output_may_share_a_name_with_an_input(
    open_store: OpenStore,
) -> None:
    store = open_store(admission=Admission(inputs_shared=False))
    store.create(owned(None, folder="out", inputs=["photos/0.jpg"]), window=1)
    store.create(owned(None, folder="photos", inputs=["x.jpg"]), window=1)


def test_a_token_bucket_gives_its_burst_then_one_token_per_interval(
    open_store: OpenStore,
) -> None:
    clock = Clock(1_800_000_000.0)
    store = open_store(clock=clock)
    assert [store.admit("alice", rate=2.0, burst=2) for _ in range(3)] == [0.0, 0.0, 0.5]
    assert store.admit("bob", rate=2.0, burst=2) == 0.0
    clock.now += 0.25
    assert store.admit("alice", rate=2.0, burst=2) == 0.25
    clock.now += 0.25
    assert store.admit("alice", rate=2.0, burst=2) == 0.0
    clock.now += 60
    assert [store.admit("alice", rate=2.0, burst=2) for _ in range(3)] == [0.0, 0.0, 0.5]


def test_the_redis_store_lets_go_of_a_jobs_inputs_and_active_place_when_it_ends(
    redis_url: str,
) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    store = RedisJobStore(client, ttl=3600, admission=Admission(max_active=5))
    job = owned("alice", folder="o", inputs=["in/a.jpg"])
    store.create(job, window=1)
    assert client.zrange("imgserve:input:in/a.jpg", 0, -1) == [job.id.encode()]
    assert client.zrange("imgserve:owner:alice:active", 0, -1) == [job.id.encode()]
    store.cancel(job.id)
    assert client.exists("imgserve:input:in/a.jpg", "imgserve:owner:alice:active") == 0
    assert client.zrange("imgserve:owner:alice:jobs", 0, -1) == [job.id.encode()]


def test_a_version_1_database_gains_the_owner_and_input_tables(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    SqliteJobStore(path, ttl=3600).close()
    sqlite3.connect(path).executescript(
        "DROP TABLE job_owners; DROP TABLE inputs; DROP TABLE rates; PRAGMA user_version = 1;"
    )
    store = SqliteJobStore(path, ttl=3600, admission=Admission(max_active=1))
    store.create(owned("alice", folder="a"), window=1)
    with pytest.raises(TooManyActive):
        store.create(owned("alice", folder="b"), window=1)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (2,)
