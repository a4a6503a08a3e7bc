"""The main process's heartbeat and reaper, without Celery: beats, redeliveries, outages."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from tests.support import Clock, OpenStore, RecordingQueue, make_job, start_image
from worker.heartbeat import Heartbeat, Reaped, pool_pids
from worker.liveness import Beat, Holder
from worker.store import JobStore, StoreUnavailable

STALE_AFTER = 30
NODE = "imgserve-1@host"


class Pool:
    """Stands in for the pool: the pids a heartbeat lists."""

    def __init__(self, *pids: int) -> None:
        self.pids = tuple(pids)

    def __call__(self) -> tuple[int, ...]:
        """Return the live pool processes."""
        return self.pids


def heartbeat(store: JobStore, queue: RecordingQueue, pool: Pool, clock: Clock) -> Heartbeat:
    """Return a heartbeat of NODE over the store, publishing to queue."""
    return Heartbeat(store, NODE, queue.enqueue, stale_after=STALE_AFTER, pids=pool, clock=clock)


def test_the_pool_processes_are_the_live_children_not_the_dead_ones() -> None:
    others = set(pool_pids())  # this test's own helpers: a redis-server, say
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 10
        while os.waitid(os.P_PID, dead.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert set(pool_pids()) - others == {alive.pid}  # the exited one: a zombie till waited for
    finally:
        alive.kill()
        alive.wait()
        dead.wait()


def test_a_beat_records_the_pool_and_a_lost_image_is_published_with_the_rest_of_its_task(
    open_store: OpenStore,
) -> None:
    clock = Clock(1_800_000_000.0)
    store = open_store(stale_after=STALE_AFTER, clock=clock)
    queue, pool = RecordingQueue(), Pool(10, 11)
    beats = heartbeat(store, queue, pool, clock)
    job = make_job(images=3, created_at=clock.now)
    store.create(job, window=1)
    assert beats.beat() == Reaped(0, 0)
    assert store.workers() == {NODE: Beat(clock.now, (10, 11))}
    clock.now += 1
    assert start_image(store, job.id, 0, holder=Holder(NODE, 10, 3)) == "run"
    clock.now += 1
    assert beats.beat() == Reaped(0, 0)
    pool.pids = (11, 12)  # 10 was killed, 12 replaced it
    clock.now += 2
    assert beats.beat() == Reaped(1, 3)
    assert queue.tasks == [(job.id, range(0, 3))]
    got = store.get(job.id)
    assert got is not None and [i.state for i in got.images] == ["queued"] * 3


def test_silence_counts_only_after_stale_after_of_beats_without_a_failure(
    open_store: OpenStore,
) -> None:
    clock = Clock(1_800_000_000.0)
    store = open_store(stale_after=STALE_AFTER, clock=clock)
    queue = RecordingQueue()
    job = make_job(images=1, created_at=clock.now)
    store.create(job, window=1)
    store.heartbeat("other@host", Beat(clock.now, (20,)))
    start_image(store, job.id, 0, holder=Holder("other@host", 20, 1))
    clock.now += 2 * STALE_AFTER  # other@host went silent, long ago
    beats = heartbeat(store, queue, Pool(10), clock)
    assert beats.beat() == Reaped(0, 0)  # this reaper just began: it may not have heard it yet
    clock.now += STALE_AFTER - 1
    assert beats.beat() == Reaped(0, 0)
    clock.now += 1
    assert beats.beat() == Reaped(1, 1)
    assert queue.tasks == [(job.id, range(0, 1))]


class Failing:
    """A store whose heartbeats fail for now, like a Redis that is down."""

    def __init__(self, store: JobStore) -> None:
        self.store = store
        self.down = False

    def __getattr__(self, name: str) -> object:
        if self.down:
            raise StoreUnavailable("Redis does not answer")
        return getattr(self.store, name)


def test_a_store_outage_starts_the_count_to_trusting_silence_again(open_store: OpenStore) -> None:
    clock = Clock(1_800_000_000.0)
    failing = Failing(open_store(stale_after=STALE_AFTER, clock=clock))
    beats = heartbeat(failing, RecordingQueue(), Pool(10), clock)  # type: ignore[arg-type]
    beats.beat()
    clock.now += STALE_AFTER
    failing.down = True
    assert (beats.beat(), beats.beating_since) == (None, None)
    failing.down = False
    clock.now += 2
    assert beats.beat() == Reaped(0, 0)
    assert beats.beating_since == clock.now


def test_a_redelivery_that_cannot_be_published_is_published_at_the_next_beat(
    open_store: OpenStore,
) -> None:
    clock = Clock(1_800_000_000.0)
    store = open_store(stale_after=STALE_AFTER, clock=clock)
    queue, pool = RecordingQueue(fail=True), Pool(10)
    beats = heartbeat(store, queue, pool, clock)
    job = make_job(images=1, created_at=clock.now)
    store.create(job, window=1)
    start_image(store, job.id, 0, holder=Holder(NODE, 10, 1))
    pool.pids = ()
    clock.now += 1
    assert beats.beat() is None
    queue.fail = False
    clock.now += 2
    assert beats.beat() == Reaped(1, 1)
    assert queue.tasks == [(job.id, range(0, 1))]


def test_the_thread_beats_until_stopped_and_then_says_no_pool_process_runs(
    open_store: OpenStore,
) -> None:
    store = open_store(stale_after=STALE_AFTER)
    beats = Heartbeat(
        store, NODE, RecordingQueue().enqueue, stale_after=STALE_AFTER, pids=Pool(10),
        interval=0.05,
    )  # fmt: skip
    beats.start()
    first = store.workers()[NODE]
    deadline = time.monotonic() + 10
    while store.workers()[NODE].at == first.at:
        assert time.monotonic() < deadline, "no second beat"
        time.sleep(0.02)
    beats.stop()
    last = store.workers()[NODE]
    assert last.pids == () and last.at > first.at
