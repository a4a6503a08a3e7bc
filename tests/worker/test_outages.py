"""A task waits out a store or broker that does not answer, then records everything once."""

from __future__ import annotations

import errno
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import redis
from celery.exceptions import Reject, TimeLimitExceeded
from kombu.exceptions import OperationalError

from tests.support import RecordingQueue, RedisServer, make_job
from worker import tasks
from worker.batches import run_batch
from worker.celery_app import celery_config
from worker.jobs import ImageRecord, Job, new_job_id
from worker.outages import Backoff, Outlasted, Recorder, is_outage, wait_out
from worker.settings import Settings
from worker.store import JobStore, Move, Step, StoreTimedOut, StoreUnavailable
from worker.store.redis_store import RedisJobStore
from worker.store.sqlite_store import SqliteJobStore

QUICK = Backoff(first=0.001, cap=0.004)


@dataclass
class Clock:
    """A clock that moves only when the code under test sleeps."""

    now: float = 100.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        """Sleep, instantly."""
        self.slept.append(seconds)
        self.now += seconds

    def time(self) -> float:
        """Return the time."""
        return self.now


class Failing:
    """A call that raises error its first fails times, then answers "answer"."""

    def __init__(self, fails: int, error: BaseException) -> None:
        self.fails = fails
        self.error = error
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.fails:
            raise self.error
        return "answer"


@pytest.fixture
def store(settings: Settings) -> SqliteJobStore:
    """Return an empty SQLite store in the settings' state folder."""
    return SqliteJobStore(settings.state_dir / "jobs.sqlite3", ttl=3600)


def test_an_outage_is_waited_out_with_doubling_delays_capped_at_five_seconds() -> None:
    clock = Clock()
    call = Failing(8, StoreUnavailable("Redis does not answer: Error 111"))
    answer = wait_out(call, what="the job store", until=200.0, sleep=clock.sleep, clock=clock.time)
    assert answer == "answer" and call.calls == 9
    assert clock.slept == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]


def test_an_outage_that_outlasts_the_deadline_says_what_failed_and_for_how_long() -> None:
    clock = Clock()
    call = Failing(100, StoreUnavailable("Redis does not answer: Error 111"))
    with pytest.raises(Outlasted) as caught:
        wait_out(call, what="the job store", until=101.0, sleep=clock.sleep, clock=clock.time)
    assert str(caught.value) == (
        "the job store failed for 1.0 s, to the deadline: Redis does not answer: Error 111"
    )
    assert clock.slept == pytest.approx([0.2, 0.4, 0.4]) and call.calls == 4  # the last: to it


@pytest.mark.parametrize(
    "error", [ValueError("a bug"), redis.ResponseError("WRONGTYPE"), KeyError("spec")]
)
def test_an_error_that_is_no_outage_goes_through_at_once(error: Exception) -> None:
    clock = Clock()
    call = Failing(1, error)
    with pytest.raises(type(error)):
        wait_out(call, what="the job store", until=200.0, sleep=clock.sleep, clock=clock.time)
    assert call.calls == 1 and clock.slept == []


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        (StoreUnavailable("Redis does not answer"), True),
        (StoreTimedOut("Redis did not answer in time"), True),
        (redis.ConnectionError("Error 111 connecting"), True),
        (redis.BusyLoadingError("Redis is loading the dataset in memory"), True),
        (redis.TimeoutError("Timeout reading from socket"), True),
        (redis.OutOfMemoryError("command not allowed when used memory > 'maxmemory'"), True),
        (redis.ReadOnlyError("You can't write against a read only replica"), True),
        (OperationalError("Error 111 connecting"), True),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"), True),
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (redis.ResponseError("WRONGTYPE Operation against a key"), False),
        (OSError(errno.EACCES, "Permission denied"), False),
        (ValueError("a bug"), False),
    ],
)
def test_outages_are_told_from_errors_in_the_call(error: BaseException, outage: bool) -> None:
    assert is_outage(error) is outage


class FlakyStore(SqliteJobStore):
    """A SQLite store whose every step fails `fails` times before it is carried out."""

    fails = 2
    error: Exception = StoreUnavailable("Redis does not answer: Error 111")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tries: list[Move] = []

    def step(self, job_id: str, move: Move) -> Step:
        self.tries.append(move)
        if len(self.tries) % (self.fails + 1):
            raise self.error
        return super().step(job_id, move)


class FlakyQueue(RecordingQueue):
    """A broker whose first `fails` publishes fail."""

    fails: int = 2
    tries: int = 0

    def enqueue(self, job_id: str, batches: list[range]) -> None:
        self.tries += 1
        if self.tries <= self.fails:
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        super().enqueue(job_id, batches)


def stored_job(store: JobStore, images: int, *, window: int = 1) -> Job:
    """Store a job of copies of one photo, with no operation."""
    job = Job(
        id=new_job_id(),
        operations=[],
        encode={"jpeg_quality": 90},
        images=[ImageRecord("cyclo4.jpg", f"out/{n}.jpg", [f"out/{n}.jpg"]) for n in range(images)],
        created_at=time.time(),
    )
    store.create(job, window=window)
    return job


def recorder(store: JobStore, queue: RecordingQueue, job: Job, **kwargs: Any) -> Recorder:
    """Return a task's recorder with an hour to spare and quick retries."""
    until = time.monotonic() + kwargs.pop("wait", 3600)
    return Recorder(store, queue.enqueue, job.id, until=until, max_attempts=3, backoff=QUICK)


def states(store: JobStore, job_id: str) -> list[str]:
    """Return each image's state."""
    job = store.get(job_id)
    assert job is not None
    return [image.state for image in job.images]


def attempts(store: JobStore, job_id: str) -> list[int]:
    """Return each image's attempts."""
    job = store.get(job_id)
    assert job is not None
    return [image.attempts for image in job.images]


def test_a_store_that_fails_then_answers_records_each_image_once(settings: Settings) -> None:
    store = FlakyStore(settings.state_dir / "jobs.sqlite3", ttl=3600)
    job = stored_job(store, 4)
    queue = RecordingQueue()
    roomy = replace(settings, batch_ms=100_000)
    assert run_batch(recorder(store, queue, job), roomy, range(0, 1), share=1) == ["run"]
    assert len(store.tries) == 2 * 3  # 2 steps, each carried out on its third try
    assert queue.tasks == [(job.id, range(1, 4))]  # the claimed batch, published once
    assert run_batch(recorder(store, queue, job), roomy, range(1, 4), share=1) == ["run"] * 3
    assert len(store.tries) == 6 * 3
    assert queue.tasks == [(job.id, range(1, 4))]  # nothing left to claim
    got = store.get(job.id)
    assert got is not None and got.state == "succeeded"
    assert attempts(store, job.id) == [1, 1, 1, 1]
    assert store.stats().images == {"succeeded": 4, "failed": 0}  # counted once each


def test_a_publish_that_fails_then_succeeds_sends_the_claimed_batch_once(
    settings: Settings, store: SqliteJobStore
) -> None:
    job = stored_job(store, 3)
    queue = FlakyQueue()
    assert run_batch(recorder(store, queue, job), settings, range(0, 1)) == ["run"]
    assert queue.tries == 3
    assert queue.tasks == [(job.id, range(1, 2))]


def test_a_full_redis_is_waited_out(settings: Settings, redis_url: str) -> None:
    store = RedisJobStore.from_url(redis_url, ttl=3600)
    job = stored_job(store, 3)
    admin = redis.Redis.from_url(redis_url)
    admin.config_set("maxmemory", 1)  # every write refused: "OOM command not allowed"
    room = threading.Timer(1.0, admin.config_set, ("maxmemory", 0))
    room.start()
    try:
        queue = RecordingQueue()
        task = Recorder(store, queue.enqueue, job.id, until=time.monotonic() + 60, max_attempts=3)
        began = time.monotonic()
        decisions = run_batch(task, replace(settings, batch_ms=100_000), range(0, 1), share=1)
    finally:
        room.join()
        admin.config_set("maxmemory", 0)
    assert decisions == ["run"]
    assert time.monotonic() - began >= 1.0
    assert queue.tasks == [(job.id, range(1, 3))]
    assert attempts(store, job.id) == [1, 0, 0]
    assert states(store, job.id) == ["succeeded", "queued", "queued"]


def test_a_redis_restart_is_waited_out(settings: Settings, tmp_path: Path) -> None:
    server = RedisServer(tmp_path, "--appendonly", "yes")  # the job outlives the restart
    server.start()
    store = RedisJobStore.from_url(server.url, ttl=3600)
    job = stored_job(store, 2)
    redis.Redis(port=server.port).shutdown()
    assert server.process is not None
    server.process.wait(timeout=10)
    back = threading.Timer(1.0, server.start)
    back.start()
    try:
        queue = RecordingQueue()
        task = Recorder(store, queue.enqueue, job.id, until=time.monotonic() + 60, max_attempts=3)
        decisions = run_batch(task, replace(settings, batch_ms=100_000), range(0, 1), share=1)
        back.join()
        assert decisions == ["run"]
        assert queue.tasks == [(job.id, range(1, 2))]
        assert attempts(store, job.id) == [1, 0]
        assert states(store, job.id) == ["succeeded", "queued"]
    finally:
        back.join()
        server.stop()


class DeadStore(SqliteJobStore):
    """A store that never answers."""

    def step(self, job_id: str, move: Move) -> Step:
        raise StoreUnavailable("Redis does not answer: Error 111")


def test_a_task_that_outlasts_its_deadline_puts_its_message_back_in_the_queue(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = DeadStore(settings.state_dir / "jobs.sqlite3", ttl=3600)
    job = stored_job(store, 1)
    monkeypatch.setattr(tasks, "_store", lambda: store)
    monkeypatch.setattr(tasks, "OUTAGE_SHARE", 0.3 / tasks.settings.soft_time_limit)
    with pytest.raises(Reject) as caught:
        tasks.process_image.run(job.id, 0, 1)
    assert caught.value.requeue is True
    assert str(caught.value.reason).startswith(f"the job store (job {job.id}) failed for 0.")
    assert str(caught.value.reason).endswith(
        " s, to the deadline: Redis does not answer: Error 111"
    )


def test_an_image_killed_at_the_hard_limit_is_failed_and_the_rest_handed_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = FlakyStore(settings.state_dir / "jobs.sqlite3", ttl=3600)
    store.fails = 0
    job = stored_job(store, 4)
    store.step(job.id, Move(start=0, max_attempts=3))
    queue = FlakyQueue()
    monkeypatch.setattr(tasks, "_store", lambda: store)
    monkeypatch.setattr(tasks, "_enqueue", queue.enqueue)
    monkeypatch.setattr(tasks, "KILLED_WAIT", 60.0)
    tasks._record_hard_time_limit(
        sender=tasks.process_image, exception=TimeLimitExceeded(330), args=(job.id, 0, 3)
    )
    got = store.get(job.id)
    assert got is not None
    assert [image.state for image in got.images] == ["failed", "queued", "queued", "queued"]
    assert got.images[0].error == "timed out: stopped at the hard time limit of 330 s"
    assert queue.tries == 3 and queue.tasks == [(job.id, range(1, 3))]


def test_the_worker_never_gives_up_on_its_broker(tmp_path: Path) -> None:
    config = celery_config(Settings(redis_url="redis://h:1/0", root=tmp_path, state_dir=tmp_path))
    assert config["broker_connection_max_retries"] is None
    assert config["broker_channel_error_retry"] is True  # OOM and READONLY replies included
    assert config["worker_cancel_long_running_tasks_on_connection_loss"] is False


def test_a_task_whose_image_failed_is_a_celery_failure_and_a_warning_line(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteJobStore(settings.state_dir / "jobs.sqlite3", ttl=3600)
    job = make_job(images=1, folder=f"out-{new_job_id()}")  # its input is not there
    store.create(job, window=1)
    monkeypatch.setattr(tasks, "_store", lambda: store)
    with pytest.raises(tasks.ImageFailed) as caught:
        tasks.process_image.run(job.id, 0, 1)
    error = store.get(job.id).images[0].error  # type: ignore[union-attr]
    assert error and str(caught.value) == f"job {job.id}: image 0: {error}"
    assert process_image_throws() == (tasks.ImageFailed,)  # logged in one line, no traceback
    [line] = [r for r in caplog.records if r.levelname == "WARNING"]
    assert line.getMessage() == f"job {job.id} image 0 failed: {error}"


def process_image_throws() -> tuple[type[BaseException], ...]:
    """Return the exceptions the task declares it may raise."""
    return tuple(tasks.process_image.throws)
