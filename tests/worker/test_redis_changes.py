"""Long-polls on Redis share one subscription and never hang on a lost message or server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support import RedisServer, finish_image, make_job, start_image
from worker.store import Finish, Move, StoreUnavailable, redis_store
from worker.store.redis_changes import (
    CHANNEL,
    QUIET_SECONDS,
    RECHECK_SECONDS,
    Change,
    Wait,
    parse,
)
from worker.store.redis_scripts import job_key
from worker.store.redis_store import RedisJobStore


def test_a_published_change_names_the_job_its_version_and_whether_it_finished() -> None:
    key, change = parse(b"imgserve:job:ab 12 1")
    assert (key, change.version, change.finished) == ("imgserve:job:ab", 12, True)


def test_a_wait_is_woken_by_its_first_change_and_by_the_finish_not_by_every_change() -> None:
    wait = Wait(version=3)
    wait.hear(Change(3, finished=False))  # not past its version
    assert not wait.woken.is_set()
    wakes = 0
    for version in range(4, 40):
        wait.hear(Change(version, finished=False))
        wakes += wait.woken.is_set()
        wait.woken.clear()
    assert (wakes, wait.changed, wait.finished) == (1, True, False)
    wait.hear(Change(40, finished=True))
    assert wait.woken.is_set() and wait.finished


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[RedisServer]:
    """Yield a redis-server of this test's own (no other test's subscribers)."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def store(private_server: RedisServer) -> Iterator[RedisJobStore]:
    """Yield a store on the test's own Redis; close it (and its listener thread) after."""
    opened = RedisJobStore.from_url(private_server.url, ttl=3600)
    yield opened
    opened.close()


def test_many_waits_share_one_subscription_and_each_wakes_for_its_own_job(
    store: RedisJobStore,
) -> None:
    jobs = [make_job(images=1, folder=f"out{n}") for n in range(10)]
    for job in jobs:
        store.create(job, window=1)
        start_image(store, job.id, 0, max_attempts=3)
    answered: dict[str, float] = {}

    def wait(job_id: str) -> None:
        store.wait(job_id, version=1, timeout=20, coalesce=10)
        answered[job_id] = time.monotonic()

    threads = [threading.Thread(target=wait, args=(job.id,)) for job in jobs]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    assert len(store.client.client_list(_type="pubsub")) == 1
    assert answered == {}
    finish_image(store, jobs[3].id, 0, error=None, timings=[])
    deadline = time.monotonic() + 5
    while jobs[3].id not in answered and time.monotonic() < deadline:
        time.sleep(0.01)
    assert list(answered) == [jobs[3].id]  # the other nine still wait
    for job in jobs:
        finish_image(store, job.id, 0, error=None, timings=[])
    for thread in threads:
        thread.join(timeout=5)
    assert sorted(answered) == sorted(job.id for job in jobs)


def test_a_change_whose_message_was_lost_answers_at_the_next_read(store: RedisJobStore) -> None:
    job = make_job(images=1)
    store.create(job, window=1)
    # Finished behind the listener's back: no message is published.
    timer = threading.Timer(
        0.2, lambda: store.client.hset(job_key(job.id), mapping={"version": 5, "finished_at": 1.0})
    )
    started = time.monotonic()
    timer.start()
    store.wait(job.id, version=0, timeout=20)
    timer.join()
    assert 0.15 < time.monotonic() - started < RECHECK_SECONDS + 2


def test_a_wait_fails_as_unavailable_when_redis_goes_away(
    private_server: RedisServer, store: RedisJobStore
) -> None:
    job = make_job(images=1)
    store.create(job, window=1)
    threading.Timer(0.3, private_server.stop).start()
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        store.wait(job.id, version=0, timeout=20)
    assert time.monotonic() - started < RECHECK_SECONDS + 5


def test_waits_are_woken_by_pub_sub_again_after_redis_comes_back(
    private_server: RedisServer, store: RedisJobStore
) -> None:
    job = make_job(images=1)
    store.create(job, window=1)
    store.wait(job.id, version=0, timeout=0.2)  # the listener is up
    private_server.stop()
    time.sleep(0.5)
    private_server.start()
    store.create(job, window=1)
    timer = threading.Timer(0.3, lambda: start_image(store, job.id, 0, max_attempts=3))
    timer.start()
    started = time.monotonic()
    store.wait(job.id, version=0, timeout=20)
    timer.join()
    assert time.monotonic() - started < RECHECK_SECONDS + 3
    client = redis.Redis.from_url(private_server.url)
    deadline = time.monotonic() + 5
    while len(client.client_list(_type="pubsub")) != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(client.client_list(_type="pubsub")) == 1
    client.close()


def test_progress_is_published_at_most_every_quiet_interval_and_a_finish_always(
    private_server: RedisServer, store: RedisJobStore
) -> None:
    listener = redis.Redis.from_url(private_server.url).pubsub(ignore_subscribe_messages=True)
    listener.subscribe(CHANNEL)
    job = make_job(images=40)
    store.create(job, window=40)
    started = time.monotonic()
    for n in range(40):  # 79 changes in well under a second
        store.step(job.id, Move(finish=Finish(n - 1) if n else None, start=n, max_attempts=3))
    finish_image(store, job.id, 39, error=None, timings=[])
    elapsed = time.monotonic() - started
    messages = []
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:  # None also stands for the ignored confirmation
        message = listener.get_message(timeout=0.1)
        if message is not None:
            messages.append(parse(message["data"])[1])
    assert messages[-1] == Change(80, finished=True)  # 40 starts, 40 finishes
    assert 2 <= len(messages) <= 2 + elapsed / QUIET_SECONDS, (len(messages), elapsed)
    listener.close()


def test_a_change_left_unpublished_is_seen_by_the_wait_s_own_read(
    store: RedisJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_store, "RECHECK_SECONDS", 30.0)  # only the read at QUIET_SECONDS
    job = make_job(images=2)
    store.create(job, window=2)
    start_image(store, job.id, 0, max_attempts=3)  # published
    # Within QUIET_SECONDS of that publish: not published.
    timer = threading.Timer(0.02, lambda: start_image(store, job.id, 1, max_attempts=3))
    started = time.monotonic()
    timer.start()
    store.wait(job.id, version=1, timeout=20)
    timer.join()
    assert time.monotonic() - started < 5
    seen = store.peek(job.id)
    assert seen is not None and seen.version == 2


def test_a_wait_that_followed_its_job_from_before_it_existed_never_reads_it(
    store: RedisJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = subscribed_and_counting_reads(store, monkeypatch)
    job = make_job(images=1)
    with store.following(job.id):
        store.create(job, window=1)
        start_image(store, job.id, 0, max_attempts=3)
        finish_image(store, job.id, 0, error=None, timings=[])  # finished before the wait
        started = time.monotonic()
        store.wait(job.id, version=0, timeout=20, coalesce=20)
    assert time.monotonic() - started < 1  # the finish was heard, not found at a recheck
    assert reads == []
    assert len(store.client.client_list(_type="pubsub")) == 1
    assert store._changes._waits == {}  # all unregistered


def test_a_followed_wait_reads_its_job_after_the_subscription_was_lost(
    private_server: RedisServer, store: RedisJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = subscribed_and_counting_reads(store, monkeypatch)
    job = make_job(images=1)
    with store.following(job.id):
        store.create(job, window=1)
        listener = store._changes
        before = listener._subscriptions
        store.client.client_kill_filter(_type="pubsub")  # messages may be lost meanwhile
        deadline = time.monotonic() + 5
        while listener._subscriptions == before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert listener._subscriptions == before + 1  # subscribed again
        start_image(store, job.id, 0, max_attempts=3)
        store.wait(job.id, version=0, timeout=20)
    assert reads == [job.id]  # read at once: it answers the change, no recheck needed


def subscribed_and_counting_reads(
    store: RedisJobStore, monkeypatch: pytest.MonkeyPatch
) -> list[str]:
    """Bring up the store's listener; return the list of jobs its waits read from now on."""
    store.wait(make_job().id, version=0, timeout=0.05)
    reads: list[str] = []
    peek = store.peek
    monkeypatch.setattr(store, "peek", lambda job_id: reads.append(job_id) or peek(job_id))
    return reads
