"""Start-up redelivery: every image a dead service was given and did not finish, once."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.support import RecordingQueue, claim_next, finish_image, start_image
from tests.support import make_job as make_stored_job
from worker.embedded import redeliver_unfinished, redelivery
from worker.jobs import Job, new_job_id
from worker.liveness import Beat, Holder
from worker.settings import Settings
from worker.store.sqlite_store import SqliteJobStore


def make_job(images: int) -> Job:
    """Return a new job of n images, writing a folder of its own (one writer an output)."""
    return make_stored_job(images, folder=f"out/{new_job_id()}")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Return embedded settings with a job window of 4."""
    (tmp_path / "state" / "queue").mkdir(parents=True)
    return Settings(root=tmp_path, state_dir=tmp_path / "state", job_window=4)


@pytest.fixture
def store(settings: Settings) -> SqliteJobStore:
    """Return the state folder's job store."""
    return SqliteJobStore(settings.state_dir / "jobs.sqlite3", ttl=3600)


def run(store: SqliteJobStore, job: Job, index: int, *, finish: bool) -> None:
    """Start an image, and finish it when asked (else it stays running, as a killed one)."""
    assert start_image(store, job.id, index, max_attempts=3) == "run"
    if finish:
        finish_image(store, job.id, index, error=None, timings=[])


def test_the_queue_is_emptied_and_each_unfinished_image_given_out_is_enqueued_once(
    store: SqliteJobStore, settings: Settings
) -> None:
    job = make_job(20)
    store.create(job, window=4)  # 0-3, one a task
    assert claim_next(store, job.id, count=6, window=4) == range(4, 8)  # 1/4 of what is left
    assert claim_next(store, job.id, count=2, window=4) == range(8, 10)
    for n in (0, 1, 4):
        run(store, job, n, finish=True)
    run(store, job, 5, finish=False)  # the dead worker's, running when it died
    for name in ("1_a.imgserve.msg", "2_b.imgserve.msg.taken"):
        (settings.state_dir / "queue" / name).write_text("{}")
    queue = RecordingQueue()
    redelivered = redeliver_unfinished(store, settings, queue.enqueue)
    # 2, 3, 5, 6, 7, 8, 9 in the window's 4 tasks; 4 finished inside one: that task skips it
    assert queue.tasks == [
        (job.id, range(2, 3)),
        (job.id, range(3, 6)),
        (job.id, range(6, 8)),
        (job.id, range(8, 10)),
    ]
    assert (redelivered.jobs, redelivered.images, redelivered.purged) == (1, 7, 1)
    assert list((settings.state_dir / "queue").iterdir()) == []
    stored = store.get(job.id)
    assert stored is not None and stored.next_index == 10


def test_a_job_with_fewer_images_to_redeliver_than_its_window_claims_its_next_ones(
    store: SqliteJobStore, settings: Settings
) -> None:
    job = make_job(10)
    store.create(job, window=4)
    for n in range(3):
        run(store, job, n, finish=True)
    queue = RecordingQueue()
    redelivered = redeliver_unfinished(store, settings, queue.enqueue)
    assert queue.tasks == [(job.id, range(3, 4)), (job.id, range(4, 5)),
                           (job.id, range(5, 6)), (job.id, range(6, 7))]  # fmt: skip
    assert (redelivered.jobs, redelivered.images) == (1, 4)


def test_finished_jobs_are_left_alone_and_a_cancelled_one_settles_its_running_image(
    store: SqliteJobStore, settings: Settings
) -> None:
    done, cancelled = make_job(1), make_job(3)
    store.create(done, window=4)
    run(store, done, 0, finish=True)
    store.create(cancelled, window=4)
    run(store, cancelled, 1, finish=False)
    store.cancel(cancelled.id)
    queue = RecordingQueue()
    redeliver_unfinished(store, settings, queue.enqueue)
    assert queue.tasks == []  # its running image was the dead service's: cancelled at once
    after = store.get(cancelled.id)
    assert after is not None and after.finished and after.images[1].state == "cancelled"


def test_an_image_running_under_a_holder_that_still_looked_alive_is_redelivered_at_once(
    store: SqliteJobStore, settings: Settings
) -> None:
    job = make_job(2)
    store.create(job, window=1)
    store.heartbeat("dead@host", Beat(time.time(), (7,)))
    assert start_image(store, job.id, 0, holder=Holder("dead@host", 7, 1)) == "run"
    queue = RecordingQueue()
    redeliver_unfinished(store, settings, queue.enqueue)
    assert queue.tasks == [(job.id, range(0, 1)), (job.id, range(1, 2))]
    assert start_image(store, job.id, 0, holder=Holder("new@host", 8, 1)) == "run"
    after = store.get(job.id)
    assert after is not None and after.images[0].attempts == 2


@pytest.mark.parametrize(
    ("left", "window", "batches"),
    [
        ([], 4, []),
        ([7], 4, [range(7, 8)]),
        ([1, 2, 3], 8, [range(1, 2), range(2, 3), range(3, 4)]),
        ([0, 1, 2, 3, 4, 5, 6], 2, [range(0, 3), range(3, 7)]),
        ([0, 5, 9, 10], 2, [range(0, 6), range(9, 11)]),
    ],
)
def test_redelivery_splits_what_is_left_into_up_to_a_window_of_tasks(
    left: list[int], window: int, batches: list[range]
) -> None:
    assert redelivery(left, window) == batches
