"""One contract, two back ends: SQLite, and Redis (fakeredis and a real server)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import fakeredis
import pytest
import redis

from tests.support import Clock, OpenStore, claim_next, finish_image, make_job, start_image
from worker.liveness import Beat, Holder
from worker.store import BUCKETS, Finish, JobStore, Move, Peek, Step, StoreUnavailable
from worker.store.redis_store import RedisJobStore
from worker.store.sqlite_store import SqliteJobStore


def states(store: JobStore, job_id: str) -> list[str]:
    """Return the state of each image of a job."""
    job = store.get(job_id)
    assert job is not None
    return [image.state for image in job.images]


def test_a_new_job_reads_back_queued_with_its_spec(store: JobStore) -> None:
    job = make_job()
    assert store.create(job, window=2) == [0, 1]
    got = store.get(job.id)
    assert got is not None
    assert got.to_json() == job.to_json()
    assert got.state == "queued" and got.next_index == 2
    assert got.to_json()["progress"] == {
        "total": 3, "done": 0, "failed": 0, "cancelled": 0, "percent": 0.0,
    }  # fmt: skip


def test_an_unknown_job_is_none(store: JobStore) -> None:
    assert store.get("nope") is None
    assert store.cancel("nope") is None
    assert claim_next(store, "nope") == range(0)
    assert start_image(store, "nope", 0, max_attempts=3) == "skip"


def test_claim_next_hands_out_each_index_once_then_none(store: JobStore) -> None:
    job = make_job(images=4)
    store.create(job, window=1)
    claims = [claim_next(store, job.id) for _ in range(4)]
    assert claims == [range(1, 2), range(2, 3), range(3, 4), range(0)]


def test_claim_next_takes_a_batch_but_leaves_the_window_a_share_of_the_tail(
    store: JobStore,
) -> None:
    job = make_job(images=40)
    store.create(job, window=4)
    # 36 left, window 4: at most 9 a task; then 27 left (7), 20 (5), 15 (4), 11 (3) ...
    claims = [claim_next(store, job.id, count=10, window=4) for _ in range(12)]
    assert claims == [
        range(4, 13), range(13, 20), range(20, 25), range(25, 29), range(29, 32),
        range(32, 34), range(34, 36), range(36, 37), range(37, 38), range(38, 39),
        range(39, 40), range(0),
    ]  # fmt: skip
    again = make_job(images=5, folder="again")
    store.create(again, window=1)
    assert claim_next(store, again.id, count=3, window=1) == range(1, 4)
    assert claim_next(store, again.id, count=3, window=1) == range(4, 5)


def test_one_step_finishes_an_image_starts_the_next_and_claims_the_next_task(
    store: JobStore,
) -> None:
    job = make_job(images=4)
    assert store.create(job, window=2) == [0, 1]
    first = store.step(job.id, Move(start=0, max_attempts=3, spec=True))
    assert (first.started, first.claimed) == ("run", range(0))
    assert first.spec is not None and first.spec.to_json() == job.to_json()
    second = store.step(
        job.id, Move(finish=Finish(0, None, [("resize", 0.01)]), start=1, max_attempts=3)
    )
    assert (second.started, second.claimed, second.spec) == ("run", range(0), None)
    assert states(store, job.id) == ["succeeded", "running", "queued", "queued"]
    last = store.step(job.id, Move(finish=Finish(1, "broken", []), claim=5, window=1))
    assert (last.started, last.claimed) == (None, range(2, 4))
    got = store.get(job.id)
    assert got is not None and got.images[1].error == "broken"
    assert (got.done, got.failed, got.running, got.next_index) == (1, 1, 0, 4)
    assert store.stats().images == {"succeeded": 1, "failed": 1}
    assert store.step("nope", Move(start=0, claim=1, spec=True)) == Step("skip", range(0), None)
    assert store.step("nope", Move(finish=Finish(0))) == Step(None, range(0), None)


def test_images_move_the_job_through_running_to_succeeded(store: JobStore) -> None:
    job = make_job(images=2)
    store.create(job, window=2)
    assert start_image(store, job.id, 0, max_attempts=3) == "run"
    running = store.get(job.id)
    assert running is not None and running.state == "running" and running.started_at is not None
    finish_image(store, job.id, 0, error=None, timings=[("resize", 0.01)])
    assert start_image(store, job.id, 1, max_attempts=3) == "run"
    finish_image(store, job.id, 1, error=None, timings=[])
    done = store.get(job.id)
    assert done is not None
    assert done.state == "succeeded" and done.finished_at is not None
    assert done.to_json()["progress"]["percent"] == 100.0
    assert done.to_json()["images"][0]["outputs"] == ["out/0.jpg"]


@pytest.mark.parametrize(
    ("errors", "final"),
    [
        ([None, None], "succeeded"),
        (["bad", None], "partially_failed"),
        (["bad", "worse"], "failed"),
    ],
)
def test_the_final_state_follows_the_images(
    store: JobStore, errors: list[str | None], final: str
) -> None:
    job = make_job(images=2)
    store.create(job, window=2)
    for n, error in enumerate(errors):
        start_image(store, job.id, n, max_attempts=3)
        finish_image(store, job.id, n, error=error, timings=[])
    got = store.get(job.id)
    assert got is not None and got.state == final
    assert [i["error"] for i in got.to_json()["images"]] == errors


def test_a_finished_image_is_never_redone_by_a_late_redelivery(store: JobStore) -> None:
    job = make_job(images=1)
    store.create(job, window=1)
    start_image(store, job.id, 0, max_attempts=3)
    finish_image(store, job.id, 0, error=None, timings=[])
    assert start_image(store, job.id, 0, max_attempts=3) == "skip"
    finish_image(store, job.id, 0, error="late", timings=[])
    got = store.get(job.id)
    assert got is not None and got.state == "succeeded" and got.done == 1 and got.failed == 0


def test_an_image_that_keeps_killing_its_worker_fails_after_max_attempts(
    open_store: OpenStore,
) -> None:
    clock = Clock()
    store = open_store(clock=clock)
    job = make_job(images=1)
    store.create(job, window=1)
    decisions = []
    for pid in range(1, 5):
        decisions.append(start_image(store, job.id, 0, holder=Holder("w@h", pid, 1)))
        clock.now += 1
        store.heartbeat("w@h", Beat(clock.now, (99,)))  # its pool process died
    assert decisions == ["run", "run", "run", "gave_up"]
    got = store.get(job.id)
    assert got is not None and got.state == "failed" and got.running == 0
    assert got.images[0].error == (
        "gave up after 3 attempts: the worker processing this image stopped each time "
        "(killed, or out of memory)"
    )


def test_cancel_stops_queued_images_and_lets_running_ones_finish(store: JobStore) -> None:
    job = make_job(images=3)
    store.create(job, window=3)
    start_image(store, job.id, 0, max_attempts=3)
    cancelled = store.cancel(job.id)
    assert cancelled is not None
    assert cancelled.state == "cancelled" and cancelled.finished_at is None
    assert states(store, job.id) == ["running", "cancelled", "cancelled"]
    assert start_image(store, job.id, 1, max_attempts=3) == "skip"
    assert claim_next(store, job.id) == range(0)
    finish_image(store, job.id, 0, error=None, timings=[])
    got = store.get(job.id)
    assert got is not None and got.state == "cancelled" and got.finished_at is not None
    assert (got.done, got.cancelled) == (1, 2)


def test_cancel_is_idempotent_and_leaves_finished_jobs_alone(store: JobStore) -> None:
    job = make_job(images=1)
    store.create(job, window=1)
    start_image(store, job.id, 0, max_attempts=3)
    finish_image(store, job.id, 0, error=None, timings=[])
    first = store.cancel(job.id)
    second = store.cancel(job.id)
    assert first is not None and second is not None
    assert first.state == second.state == "succeeded"


def test_list_jobs_is_newest_first_and_paginated(store: JobStore) -> None:
    jobs = [
        make_job(images=1, created_at=time.time() - 100 + n, folder=f"out{n}") for n in range(5)
    ]
    for job in jobs:
        store.create(job, window=1)
    newest_first = [job.id for job in reversed(jobs)]
    assert [j.id for j in store.list_jobs(limit=2, offset=0)] == newest_first[:2]
    assert [j.id for j in store.list_jobs(limit=10, offset=2)] == newest_first[2:]


def test_wait_returns_at_once_when_the_version_already_moved(store: JobStore) -> None:
    job = make_job(images=1)
    store.create(job, window=1)
    start_image(store, job.id, 0, max_attempts=3)
    started = time.monotonic()
    store.wait(job.id, version=0, timeout=5)
    assert time.monotonic() - started < 1


def test_wait_wakes_when_the_job_changes(store: JobStore) -> None:
    job = make_job(images=1)
    store.create(job, window=1)
    timer = threading.Timer(0.3, lambda: start_image(store, job.id, 0, max_attempts=3))
    started = time.monotonic()
    timer.start()
    store.wait(job.id, version=0, timeout=10)
    waited = time.monotonic() - started
    timer.join()
    assert 0.25 < waited < 5


def test_wait_gives_up_after_its_timeout(store: JobStore) -> None:
    job = make_job(images=1)
    store.create(job, window=1)
    started = time.monotonic()
    store.wait(job.id, version=0, timeout=0.3)
    assert 0.25 < time.monotonic() - started < 3


def test_peek_reads_the_version_whether_the_job_finished_and_when_it_changed(
    store: JobStore,
) -> None:
    job = make_job(images=1)
    store.create(job, window=1)
    assert store.peek(job.id) == Peek(version=0, finished=False, changed_at=job.created_at)
    start_image(store, job.id, 0, max_attempts=3)
    finish_image(store, job.id, 0, error=None, timings=[])
    seen = store.peek(job.id)
    assert seen is not None and (seen.version, seen.finished) == (2, True)
    assert seen.changed_at >= job.created_at
    assert store.peek("no-such-job") is None


def test_a_coalesced_wait_answers_a_progress_change_only_after_the_interval(
    store: JobStore,
) -> None:
    job = make_job(images=2)
    store.create(job, window=2)
    timer = threading.Timer(0.1, lambda: start_image(store, job.id, 0, max_attempts=3))
    started = time.monotonic()
    timer.start()
    store.wait(job.id, version=0, timeout=10, coalesce=1.5)
    waited = time.monotonic() - started
    timer.join()
    seen = store.peek(job.id)
    assert seen is not None and (seen.version, seen.finished) == (1, False)
    assert 1.5 <= waited < 5


def test_a_coalesced_wait_answers_at_once_when_the_job_finishes(store: JobStore) -> None:
    job = make_job(images=1)
    store.create(job, window=1)
    start_image(store, job.id, 0, max_attempts=3)

    def finish() -> None:
        finish_image(store, job.id, 0, error=None, timings=[])

    timer = threading.Timer(0.2, finish)
    started = time.monotonic()
    timer.start()
    store.wait(job.id, version=1, timeout=10, coalesce=5)
    waited = time.monotonic() - started
    timer.join()
    assert 0.15 < waited < 3


def test_a_wait_on_a_missing_job_answers_at_once(store: JobStore) -> None:
    started = time.monotonic()
    store.wait("no-such-job", version=0, timeout=5, coalesce=1)
    assert time.monotonic() - started < 1


def test_stats_count_jobs_images_and_operation_times(store: JobStore) -> None:
    job = make_job(images=2)
    store.create(job, window=2)
    start_image(store, job.id, 0, max_attempts=3)
    finish_image(store, job.id, 0, error=None, timings=[("resize", 0.007), ("encode", 0.2)])
    start_image(store, job.id, 1, max_attempts=3)
    finish_image(store, job.id, 1, error="broken", timings=[("resize", 0.02)])
    stats = store.stats()
    assert stats.jobs["partially_failed"] == 1 and stats.jobs["running"] == 0
    assert stats.images == {"succeeded": 1, "failed": 1}
    resize = stats.operations["resize"]
    assert resize.count == 2 and resize.total == pytest.approx(0.027)
    assert resize.buckets[BUCKETS.index(0.01)] == 1 and resize.buckets[BUCKETS.index(0.025)] == 1


def test_an_unreachable_redis_is_store_unavailable() -> None:
    store = RedisJobStore.from_url("redis://127.0.0.1:1/0", ttl=60)
    with pytest.raises(StoreUnavailable, match="Redis does not answer"):
        store.ping()


def test_jobs_expire_after_their_ttl(redis_url: str, tmp_path: Path) -> None:
    for store in (
        RedisJobStore.from_url(redis_url, ttl=1),
        SqliteJobStore(tmp_path / "jobs.sqlite3", ttl=1),
    ):
        job = make_job(images=1)
        store.create(job, window=1)
        assert store.get(job.id) is not None
        time.sleep(1.1)
        assert store.get(job.id) is None, type(store).__name__


def test_concurrent_workers_never_lose_a_count(store: JobStore) -> None:
    job = make_job(images=40)
    store.create(job, window=40)

    def work(indices: range) -> None:
        for n in indices:
            assert start_image(store, job.id, n, max_attempts=3) == "run"
            finish_image(store, job.id, n, error=None if n % 4 else "bad", timings=[])

    threads = [threading.Thread(target=work, args=(range(k, 40, 4),)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = store.get(job.id)
    assert got is not None
    assert (got.done, got.failed, got.running, got.state) == (30, 10, 0, "partially_failed")


def test_redis_errors_other_than_connection_are_not_hidden() -> None:
    client = fakeredis.FakeRedis()
    client.set("imgserve:job:x", "not a hash")
    with pytest.raises(redis.ResponseError):
        RedisJobStore(client, ttl=60).get("x")


def test_every_change_records_when_it_happened(store: JobStore) -> None:
    job = make_job(images=1, created_at=time.time() - 100)
    store.create(job, window=1)
    created = store.get(job.id)
    assert created is not None and created.changed_at == pytest.approx(job.created_at)
    start_image(store, job.id, 0, max_attempts=3)
    started = store.get(job.id)
    assert started is not None and started.changed_at is not None
    assert started.changed_at > job.created_at + 99


def test_timestamps_always_carry_microseconds_so_they_sort_as_text() -> None:
    from worker.jobs import iso

    assert iso(1_800_000_000.0) == "2027-01-15T08:00:00.000000Z"
    assert iso(1_800_000_000.25) == "2027-01-15T08:00:00.250000Z"
    assert iso(None) is None


def test_spec_is_the_job_as_created_whatever_its_progress(store: JobStore) -> None:
    job = make_job(images=2)
    store.create(job, window=2)
    start_image(store, job.id, 0, max_attempts=3)
    spec = store.step(job.id, Move(spec=True)).spec
    assert spec is not None
    assert spec.spec() == job.spec() and [i.state for i in spec.images] == ["queued", "queued"]
    assert store.step("nope", Move(spec=True)).spec is None
