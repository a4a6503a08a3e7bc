"""Liveness on every store: holders, heartbeats, and what the reaper queues again."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.support import Clock, OpenStore, finish_image, make_job, start_image
from worker.jobs import Job
from worker.liveness import Beat, Holder
from worker.store import JobStore, Move, Step
from worker.store.redis_scripts import RUNNING
from worker.store.redis_store import RedisJobStore
from worker.store.sqlite_store import SqliteJobStore

STALE_AFTER = 30
TIME_LIMIT = 100
NODE = "imgserve-1@host"


def holder(pid: int, until: int = 1, node: str = NODE) -> Holder:
    """Return a holder on node, pool process pid, whose task ends at until."""
    return Holder(node, pid, until)


def read(store: JobStore, job_id: str) -> Job:
    """Return a job that must exist."""
    job = store.get(job_id)
    assert job is not None
    return job


def running_job(open_store: OpenStore, images: int = 3, *, until: int = 1) -> tuple[JobStore, Clock, Job]:  # fmt: skip
    """Return a store, its clock and a job whose image 0 runs under pid 10 of NODE."""
    clock = Clock(1_800_000_000.0)
    store = open_store(stale_after=STALE_AFTER, time_limit=TIME_LIMIT, clock=clock)
    job = make_job(images=images, created_at=clock.now)
    store.create(job, window=images)
    store.heartbeat(NODE, Beat(clock.now, (10, 11)))
    clock.now += 0.5
    assert start_image(store, job.id, 0, holder=holder(10, until)) == "run"
    return store, clock, job


def test_a_start_records_its_holder_until_the_image_settles(open_store: OpenStore) -> None:
    store, _, job = running_job(open_store, until=3)
    assert read(store, job.id).images[0].holder == Holder(NODE, 10, 3)
    assert "holder" not in read(store, job.id).to_json()["images"][0]
    finish_image(store, job.id, 0)
    assert read(store, job.id).images[0].holder is None


def test_a_duplicate_delivery_of_an_image_running_under_a_live_holder_is_skipped(
    open_store: OpenStore,
) -> None:
    store, clock, job = running_job(open_store)
    clock.now += 1
    store.heartbeat(NODE, Beat(clock.now, (10, 11)))
    assert start_image(store, job.id, 0, holder=holder(11)) == "skip"
    got = read(store, job.id)
    assert (got.images[0].attempts, got.images[0].holder, got.running) == (1, holder(10), 1)


def test_a_repeat_of_a_holders_own_start_runs_on_without_another_attempt(
    open_store: OpenStore,
) -> None:
    store, clock, job = running_job(open_store)  # e.g. a step retried after a timeout
    clock.now += 1
    store.heartbeat(NODE, Beat(clock.now, (10, 11)))
    version = read(store, job.id).version
    assert store.step(job.id, Move(start=0, holder=holder(10))) == Step("run", range(0), None, 1)
    got = read(store, job.id)
    assert (got.images[0].attempts, got.images[0].holder, got.version) == (1, holder(10), version)


def test_a_start_of_an_image_whose_pool_process_is_gone_runs_it_again(
    open_store: OpenStore,
) -> None:
    store, clock, job = running_job(open_store)
    clock.now += 1
    store.heartbeat(NODE, Beat(clock.now, (11, 12)))  # 10 died, 12 replaced it
    assert start_image(store, job.id, 0, holder=holder(12)) == "run"
    got = read(store, job.id)
    assert (got.images[0].attempts, got.images[0].holder, got.running) == (2, holder(12), 1)


def test_an_image_whose_pool_process_left_a_newer_heartbeat_is_queued_again_at_once(
    open_store: OpenStore,
) -> None:
    store, clock, job = running_job(open_store, images=4, until=3)
    clock.now += 1
    store.heartbeat(NODE, Beat(clock.now, (10, 11)))
    assert (store.lost_jobs(), store.redeliver_lost(job.id)) == ([], [])
    store.heartbeat(NODE, Beat(clock.now + 1, (11,)))
    assert store.lost_jobs() == [job.id]
    # The rest of its task goes with it: nothing else would run images 1 and 2.
    assert store.redeliver_lost(job.id) == [range(0, 3)]
    assert store.redeliver_lost(job.id) == []  # only one reaper gets it
    got = read(store, job.id)
    assert [i.state for i in got.images] == ["queued"] * 4
    assert (got.state, got.running, got.images[0].attempts, got.images[0].holder) == (
        "running",
        0,
        1,
        None,
    )
    assert store.lost_jobs() == []
    assert start_image(store, job.id, 0, holder=holder(11)) == "run"
    assert read(store, job.id).images[0].attempts == 2


def test_a_heartbeat_taken_before_the_start_does_not_count_a_missing_pid(
    open_store: OpenStore,
) -> None:
    store, clock, job = running_job(open_store)
    store.heartbeat(NODE, Beat(clock.now - 0.25, (11,)))  # listed before pid 10 was forked
    assert store.redeliver_lost(job.id) == []


def test_a_node_silent_for_stale_after_loses_its_images(open_store: OpenStore) -> None:
    store, clock, job = running_job(open_store, until=2)
    clock.now += 10
    store.heartbeat(NODE, Beat(clock.now, (10, 11)))
    clock.now += STALE_AFTER - 1
    assert store.redeliver_lost(job.id) == []
    clock.now += 2
    assert store.lost_jobs(silence=False) == []  # a reaper that may have missed beats
    assert store.redeliver_lost(job.id, silence=False) == []
    assert store.lost_jobs() == [job.id]
    assert store.redeliver_lost(job.id) == [range(0, 2)]


def test_an_image_started_longer_ago_than_the_hard_time_limit_is_given_up_by_its_live_holder(
    open_store: OpenStore,
) -> None:
    store, clock, job = running_job(open_store)
    for _ in range(int(TIME_LIMIT + STALE_AFTER) // 10):  # pid 10 lives, but not its attempt
        clock.now += 10
        store.heartbeat(NODE, Beat(clock.now, (10, 11)))
        assert store.redeliver_lost(job.id) == []
    clock.now += 1
    store.heartbeat(NODE, Beat(clock.now, (10, 11)))
    assert store.redeliver_lost(job.id) == [range(0, 1)]


def test_an_image_started_before_its_nodes_first_heartbeat_is_lost_only_after_stale_after(
    open_store: OpenStore,
) -> None:
    clock = Clock(1_800_000_000.0)
    store = open_store(stale_after=STALE_AFTER, clock=clock)
    job = make_job(images=1, created_at=clock.now)
    store.create(job, window=1)
    start_image(store, job.id, 0, holder=holder(10))
    clock.now += STALE_AFTER - 1
    assert store.redeliver_lost(job.id) == []
    assert start_image(store, job.id, 0, holder=holder(11, node="other@host")) == "skip"
    clock.now += 2
    assert store.redeliver_lost(job.id) == [range(0, 1)]


def test_queued_images_are_never_touched_however_long_they_wait(open_store: OpenStore) -> None:
    clock = Clock(1_800_000_000.0)
    store = open_store(stale_after=STALE_AFTER, clock=clock)
    job = make_job(images=2, created_at=clock.now)
    store.create(job, window=2)
    clock.now += 100 * STALE_AFTER
    assert store.lost_jobs() == []
    assert store.redeliver_lost(job.id) == []
    got = read(store, job.id)
    assert ([i.state for i in got.images], got.version, got.failed) == (["queued"] * 2, 0, 0)


def test_a_read_changes_nothing_even_when_the_holder_is_gone(open_store: OpenStore) -> None:
    store, clock, job = running_job(open_store)
    clock.now += 10 * STALE_AFTER
    before = read(store, job.id)
    assert [i.state for i in before.images] == ["running", "queued", "queued"]
    assert read(store, job.id) == before
    assert store.list_jobs(limit=10, offset=0) == [before]


def test_a_cancelled_job_whose_running_image_lost_its_holder_finishes_when_reaped(
    open_store: OpenStore,
) -> None:
    store, clock, job = running_job(open_store, images=2)
    cancelled = store.cancel(job.id)
    assert cancelled is not None and cancelled.finished_at is None  # image 0 still runs
    clock.now += STALE_AFTER + 1
    assert store.redeliver_lost(job.id) == []  # nothing to publish: it is cancelled
    got = read(store, job.id)
    assert (got.state, got.finished_at, got.running) == ("cancelled", clock.now, 0)
    assert [i.state for i in got.images] == ["cancelled", "cancelled"]


def test_heartbeats_are_kept_by_node_and_forgotten_after_twice_stale_after(
    open_store: OpenStore,
) -> None:
    clock = Clock(1_800_000_000.0)
    store = open_store(stale_after=STALE_AFTER, clock=clock)
    store.heartbeat("a@h", Beat(clock.now, (1, 2)))
    store.heartbeat("b@h", Beat(clock.now + 1, (3,)))
    store.heartbeat("a@h", Beat(clock.now + 2, (2, 4)))
    assert store.workers() == {"a@h": Beat(clock.now + 2, (2, 4)), "b@h": Beat(clock.now + 1, (3,))}
    store.heartbeat("a@h", Beat(clock.now + 1 + 2 * STALE_AFTER + 0.5, ()))
    assert store.workers() == {"a@h": Beat(clock.now + 1.5 + 2 * STALE_AFTER, ())}


def test_the_lost_jobs_are_those_with_a_lost_image_and_none_once_it_is_queued_again(
    open_store: OpenStore,
) -> None:
    store, clock, job = running_job(open_store)
    other = make_job(images=1, folder="other", created_at=clock.now)
    store.create(other, window=1)
    start_image(store, other.id, 0, holder=holder(11))
    clock.now += 1
    store.heartbeat(NODE, Beat(clock.now, (11,)))
    assert store.lost_jobs() == [job.id]
    assert store.redeliver_lost(job.id) == [range(0, 1)]
    assert store.lost_jobs() == []
    finish_image(store, other.id, 0)
    clock.now += 10 * STALE_AFTER
    assert store.lost_jobs() == []
    assert store.redeliver_lost("no-such-job") == []


def test_a_job_that_expired_while_an_image_ran_is_forgotten_by_the_reaper(
    open_store: OpenStore,
) -> None:
    store = open_store(ttl=1, stale_after=0.5)  # Redis expires keys by its own clock
    job = make_job(images=1)
    store.create(job, window=1)
    start_image(store, job.id, 0, holder=holder(10))
    time.sleep(1.1)
    assert store.lost_jobs() == []
    if isinstance(store, RedisJobStore):
        assert store.client.hgetall(RUNNING) == {}


def test_a_version_1_database_gains_the_holder_and_heartbeat_tables_when_first_opened(
    tmp_path: Path,
) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = SqliteJobStore(path, ttl=3600)
    job = make_job(images=1)
    store.create(job, window=1)
    store.db.connection().executescript(  # what version 1 had
        "DROP TABLE holders; DROP TABLE workers; DROP INDEX images_running; PRAGMA user_version = 1;"
    )
    store.close()
    again = SqliteJobStore(path, ttl=3600)
    assert start_image(again, job.id, 0, holder=holder(10)) == "run"
    again.heartbeat(NODE, Beat(time.time(), (10,)))
    assert read(again, job.id).images[0].holder == holder(10)
    assert again.lost_jobs() == []
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone() == (2,)
