"""The task's work, without Celery: run an image, record it, keep the window moving."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import pytest
from celery.exceptions import SoftTimeLimitExceeded

from tests.support import RecordingQueue, finish_image, start_image
from worker import batches
from worker.images import PreparedJob, soft_limit_error
from worker.jobs import ImageRecord, Job, Start, new_job_id
from worker.liveness import Beat, Holder
from worker.outages import Recorder
from worker.scheduling import MAX_BATCH, batch_size
from worker.settings import Settings
from worker.store import JobStore, Move, Step
from worker.store.redis_changes import Change, Wait
from worker.store.sqlite_store import SqliteJobStore


@pytest.fixture
def store(settings: Settings) -> SqliteJobStore:
    """Return an empty SQLite store in the settings' state folder."""
    return SqliteJobStore(settings.state_dir / "jobs.sqlite3", ttl=3600)


def new_job(store: SqliteJobStore, pairs: list[tuple[str, str]], operations: list[dict]) -> Job:  # type: ignore[type-arg]
    """Store a job of (input, output) pairs with a window of one image."""
    job = Job(
        id=new_job_id(),
        operations=operations,
        encode={"jpeg_quality": 90, "webp_quality": 80, "png_compression": 1},
        images=[ImageRecord(i, o, [o]) for i, o in pairs],
        created_at=time.time(),
    )
    store.create(job, window=1)
    return job


def handle_images(
    store: JobStore, settings: Settings, job_id: str, batch: range, enqueue: Any
) -> list[Start]:
    """Run a task's batch as the task does, on this store and queue, with an hour to spare."""
    recorder = Recorder(
        store, enqueue, job_id, until=time.monotonic() + 3600, max_attempts=settings.max_attempts
    )
    return batches.run_batch(recorder, settings, batch)


def test_an_image_is_processed_recorded_and_the_next_one_enqueued(
    settings: Settings, store: SqliteJobStore
) -> None:
    queue = RecordingQueue()
    job = new_job(
        store,
        [("cyclo2.jpg", "out/a.png"), ("cyclo4.jpg", "out/b.png")],
        [{"op": "resize", "factor": 0.5}],
    )
    assert handle_images(store, settings, job.id, range(0, 1), queue.enqueue) == ["run"]
    assert queue.sent == [(job.id, [1])]
    image = cv2.imread(str(settings.root / "out/a.png"))
    assert image.shape == (512, 512, 3)
    assert handle_images(store, settings, job.id, range(1, 2), queue.enqueue) == ["run"]
    got = store.get(job.id)
    assert got is not None and got.state == "succeeded"
    stats = store.stats()
    assert stats.images == {"succeeded": 2, "failed": 0}
    assert {"decode", "resize", "encode"} <= stats.operations.keys()


def test_a_redelivered_task_publishes_the_batch_its_first_delivery_claimed(
    settings: Settings, store: SqliteJobStore
) -> None:
    queue = RecordingQueue()
    pairs = [("cyclo4.jpg", f"out/{n}.png") for n in range(4)]
    job = new_job(store, pairs, [{"op": "resize", "factor": 0.5}])
    assert handle_images(store, settings, job.id, range(0, 1), queue.enqueue) == ["run"]
    assert handle_images(store, settings, job.id, range(0, 1), queue.enqueue) == ["skip"]
    [(_, first), (_, again)] = queue.sent
    assert first == again and first[0] == 1  # the same images, none stranded
    got = store.get(job.id)
    assert got is not None and got.next_index == 1 + len(first)


def test_a_bad_image_is_a_failed_result_not_a_retry(
    settings: Settings, store: SqliteJobStore
) -> None:
    (settings.root / "empty.jpg").write_bytes(b"")
    job = new_job(store, [("empty.jpg", "o.jpg")], [])
    assert handle_images(store, settings, job.id, range(0, 1), RecordingQueue().enqueue) == ["run"]
    got = store.get(job.id)
    assert got is not None and got.state == "failed"
    assert got.images[0].error
    assert not (settings.root / "o.jpg").exists()


def test_a_path_swapped_to_escape_the_root_is_caught_by_the_worker(
    settings: Settings, store: SqliteJobStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    job = new_job(store, [("cyclo4.jpg", "sub/o.jpg")], [])
    (settings.root / "sub").symlink_to(outside)
    handle_images(store, settings, job.id, range(0, 1), RecordingQueue().enqueue)
    got = store.get(job.id)
    assert got is not None and got.images[0].error == "the output path is outside the storage root"
    assert list(outside.iterdir()) == []


def test_an_image_of_a_cancelled_job_is_skipped(settings: Settings, store: SqliteJobStore) -> None:
    queue = RecordingQueue()
    job = new_job(store, [("cyclo4.jpg", "a.jpg"), ("cyclo4.jpg", "b.jpg")], [])
    store.cancel(job.id)
    assert handle_images(store, settings, job.id, range(0, 1), queue.enqueue) == ["skip"]
    assert queue.sent == []
    assert not (settings.root / "a.jpg").exists()


def test_a_redelivered_finished_image_is_not_redone(
    settings: Settings, store: SqliteJobStore
) -> None:
    job = new_job(store, [("cyclo4.jpg", "a.jpg")], [])
    handle_images(store, settings, job.id, range(0, 1), RecordingQueue().enqueue)
    (settings.root / "a.jpg").unlink()
    assert handle_images(store, settings, job.id, range(0, 1), RecordingQueue().enqueue) == ["skip"]
    assert not (settings.root / "a.jpg").exists()


def test_a_task_runs_its_batch_in_turn_and_sizes_the_next_from_their_times(
    settings: Settings, store: SqliteJobStore
) -> None:
    queue = RecordingQueue()
    pairs = [("cyclo1.jpg", f"out/{n}.jpg") for n in range(12)]
    job = new_job(store, pairs, [{"op": "resize", "factor": 0.25}])
    roomy = replace(settings, batch_ms=100_000, job_window=2)  # any image is cheap
    assert handle_images(store, roomy, job.id, range(0, 1), queue.enqueue) == ["run"]
    # 11 images left, a window of 2 tasks: the next task takes half of them, rounded up.
    assert queue.tasks == [(job.id, range(1, 7))]
    assert handle_images(store, roomy, job.id, range(1, 7), queue.enqueue) == ["run"] * 6
    assert queue.tasks[1:] == [(job.id, range(7, 10))]
    got = store.get(job.id)
    assert got is not None
    assert [image.state for image in got.images] == ["succeeded"] * 7 + ["queued"] * 5
    for n in range(7):
        assert cv2.imread(str(settings.root / f"out/{n}.jpg")).shape == (188, 256, 3)
    handle_images(store, roomy, job.id, range(7, 10), queue.enqueue)
    slow = replace(settings, batch_ms=1)  # any image is expensive: one a task
    handle_images(store, slow, job.id, range(10, 11), queue.enqueue)
    assert queue.tasks[2:] == [(job.id, range(10, 11)), (job.id, range(11, 12))]


def test_batch_size_aims_at_the_budget_within_one_and_the_cap(settings: Settings) -> None:
    budget = replace(settings, batch_ms=100)
    assert batch_size([], budget) == 1
    assert batch_size([0.010, 0.012, 0.011], budget) == 9
    assert batch_size([0.060], budget) == 1
    assert batch_size([0.500], budget) == 1
    assert batch_size([0.0001], budget) == MAX_BATCH == 32


def test_a_redelivered_batch_redoes_only_what_it_had_not_finished(
    settings: Settings, store: SqliteJobStore
) -> None:
    pairs = [("cyclo4.jpg", f"{n}.jpg") for n in range(4)]
    job = new_job(store, pairs, [])
    # The first delivery finished image 0 and died while running image 1.
    start_image(store, job.id, 0, max_attempts=3)
    finish_image(store, job.id, 0, error=None, timings=[])
    start_image(store, job.id, 1, max_attempts=3, holder=Holder("w@host", 5, 4))
    store.heartbeat("w@host", Beat(time.time(), (6,)))  # its pool process is gone
    # It was killed between writing image 1's temporary file and moving it into place.
    (settings.root / ".1.jpg.0badcafe.tmp").write_bytes(b"half an image")
    (settings.root / ".2.jpg.0badcafe.tmp").write_bytes(b"not ours to judge")
    roomy = replace(settings, batch_ms=100_000)
    decisions = handle_images(store, roomy, job.id, range(0, 4), RecordingQueue().enqueue)
    assert decisions == ["skip", "run", "run", "run"]
    got = store.get(job.id)
    assert got is not None and got.state == "succeeded"
    assert [image.attempts for image in got.images] == [1, 2, 1, 1]
    assert not (settings.root / "0.jpg").exists()  # not redone
    assert all((settings.root / f"{n}.jpg").exists() for n in (1, 2, 3))
    # The retry of image 1 removed what its killed attempt left; a first attempt lists nothing.
    assert sorted(p.name for p in settings.root.glob(".*.tmp")) == [".2.jpg.0badcafe.tmp"]


def test_a_soft_time_limit_hands_the_images_not_started_to_a_new_task(
    settings: Settings, store: SqliteJobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = RecordingQueue()
    pairs = [("cyclo4.jpg", f"{n}.jpg") for n in range(5)]
    job = new_job(store, pairs, [])
    real = batches.run_image

    def slow_second(
        prepared: PreparedJob, index: int, settings: Settings, retry: bool = False
    ) -> tuple[str | None, list]:  # type: ignore[type-arg]
        if index == 1:
            return soft_limit_error(settings), []
        return real(prepared, index, settings, retry=retry)

    monkeypatch.setattr(batches, "run_image", slow_second)
    roomy = replace(settings, batch_ms=100_000)
    assert handle_images(store, roomy, job.id, range(0, 4), queue.enqueue) == ["run"] * 2
    # The rest of the batch in a new task, which stands for the job's next one.
    assert queue.tasks == [(job.id, range(2, 4))]
    got = store.get(job.id)
    assert got is not None
    assert [image.state for image in got.images] == [
        "succeeded", "failed", "queued", "queued", "queued"
    ]  # fmt: skip
    assert got.images[1].error == "timed out: stopped at the soft time limit of 300 s"


def test_a_batch_that_overruns_its_budget_hands_the_rest_to_a_new_task(
    settings: Settings, store: SqliteJobStore
) -> None:
    queue = RecordingQueue()
    pairs = [("cyclo4.jpg", f"{n}.png") for n in range(5)]
    job = new_job(store, pairs, [{"op": "blur", "kernel": 31, "sigma": 0}])
    tight = replace(settings, batch_ms=1)  # one blurred 1 MP PNG takes well over 3 ms
    assert handle_images(store, tight, job.id, range(0, 4), queue.enqueue) == ["run"]
    assert queue.tasks == [(job.id, range(1, 4))]
    assert states_of(store, job.id) == ["succeeded", "queued", "queued", "queued", "queued"]


def test_a_soft_time_limit_between_two_images_hands_them_on(
    settings: Settings, store: SqliteJobStore
) -> None:
    queue = RecordingQueue()
    job = new_job(store, [("cyclo4.jpg", f"{n}.jpg") for n in range(3)], [])

    class LimitedStore(SqliteJobStore):
        def step(self, job_id: str, move: Move) -> Step:
            if move.start == 1:
                raise SoftTimeLimitExceeded()
            return super().step(job_id, move)

    limited = LimitedStore(settings.state_dir / "jobs.sqlite3", ttl=3600)
    roomy = replace(settings, batch_ms=100_000)
    assert handle_images(limited, roomy, job.id, range(0, 3), queue.enqueue) == ["run"]
    assert queue.tasks == [(job.id, range(0, 3))]  # image 0 is recorded, so it will skip
    assert states_of(store, job.id) == ["succeeded", "queued", "queued"]


def test_a_late_older_message_does_not_count_as_a_change() -> None:
    wait = Wait(version=5)
    wait.hear(Change(4, finished=False))
    assert not wait.changed and not wait.woken.is_set()


def states_of(store: SqliteJobStore, job_id: str) -> list[str]:
    """Return each image's state."""
    job = store.get(job_id)
    assert job is not None
    return [image.state for image in job.images]


REUSE_PROBE = """
import resource, sys, numpy
from worker.memory import keep_large_allocations
if sys.argv[1] == "tuned":
    assert keep_large_allocations()
numpy.ones(64 * 2**20, numpy.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(2):
    numpy.ones(64 * 2**20, numpy.uint8)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults_of_two_more_images(mode: str) -> int:
    """Return the page faults of allocating and filling two more 64 MB buffers after a first."""
    done = subprocess.run(
        [sys.executable, "-c", REUSE_PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_worker_processes_reuse_large_buffers_instead_of_mapping_them_afresh() -> None:
    huge_pages = 2 * 64 * 2**20 // (2 * 2**20)  # at least a fault a 2 MB page, even with THP
    plain = page_faults_of_two_more_images("plain")
    assert plain >= huge_pages  # each buffer is mapped and faulted in anew
    assert page_faults_of_two_more_images("tuned") <= plain // 10


class CountingStore(SqliteJobStore):
    """A SQLite store that counts the steps that read a job's spec."""

    spec_reads = 0

    def step(self, job_id: str, move: Move) -> Step:
        self.spec_reads += move.spec
        return super().step(job_id, move)


def test_a_process_reads_a_jobs_spec_once_and_keeps_its_roots_for_all_its_images(
    settings: Settings,
) -> None:
    store = CountingStore(settings.state_dir / "jobs.sqlite3", ttl=3600)
    queue = RecordingQueue()
    job = new_job(store, [("cyclo4.jpg", f"out/{n}.jpg") for n in range(3)], [])
    for n in range(3):
        assert handle_images(store, settings, job.id, range(n, n + 1), queue.enqueue) == ["run"]
    assert store.spec_reads == 1
    prepared = batches._prepared.get(job.id)
    assert prepared is not None and prepared.outputs is prepared.inputs  # one root, one InRoot
    assert list(prepared.outputs._folders) == ["", "out"]  # the folders it read, once each
