"""The task's work, without Celery: run an image, record it, keep the window moving."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from tests.support import RecordingQueue
from worker.jobs import ImageRecord, Job, new_job_id
from worker.settings import Settings
from worker.store.sqlite_store import SqliteJobStore
from worker.tasks import handle_image


@pytest.fixture
def settings(tmp_path: Path, seed_images: list[Path]) -> Settings:
    """Return settings over a root holding the seed photos."""
    root = tmp_path / "root"
    root.mkdir()
    for photo in seed_images:
        shutil.copy(photo, root / photo.name)
    return Settings(root=root, state_dir=tmp_path / "state")


@pytest.fixture
def store(settings: Settings) -> SqliteJobStore:
    """Return an empty SQLite store."""
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


def test_an_image_is_processed_recorded_and_the_next_one_enqueued(
    settings: Settings, store: SqliteJobStore
) -> None:
    queue = RecordingQueue()
    job = new_job(
        store,
        [("cyclo2.jpg", "out/a.png"), ("cyclo4.jpg", "out/b.png")],
        [{"op": "resize", "factor": 0.5}],
    )
    assert handle_image(store, settings, job.id, 0, queue.enqueue) == "run"
    assert queue.sent == [(job.id, [1])]
    image = cv2.imread(str(settings.root / "out/a.png"))
    assert image.shape == (512, 512, 3)
    assert handle_image(store, settings, job.id, 1, queue.enqueue) == "run"
    got = store.get(job.id)
    assert got is not None and got.state == "succeeded"
    stats = store.stats()
    assert stats.images == {"succeeded": 2, "failed": 0}
    assert {"decode", "resize", "encode"} <= stats.operations.keys()


def test_a_bad_image_is_a_failed_result_not_a_retry(
    settings: Settings, store: SqliteJobStore
) -> None:
    (settings.root / "empty.jpg").write_bytes(b"")
    job = new_job(store, [("empty.jpg", "o.jpg")], [])
    assert handle_image(store, settings, job.id, 0, RecordingQueue().enqueue) == "run"
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
    handle_image(store, settings, job.id, 0, RecordingQueue().enqueue)
    got = store.get(job.id)
    assert got is not None and got.images[0].error == "the output path is outside the storage root"
    assert list(outside.iterdir()) == []


def test_an_image_of_a_cancelled_job_is_skipped(settings: Settings, store: SqliteJobStore) -> None:
    queue = RecordingQueue()
    job = new_job(store, [("cyclo4.jpg", "a.jpg"), ("cyclo4.jpg", "b.jpg")], [])
    store.cancel(job.id)
    assert handle_image(store, settings, job.id, 0, queue.enqueue) == "skip"
    assert queue.sent == []
    assert not (settings.root / "a.jpg").exists()


def test_a_redelivered_finished_image_is_not_redone(
    settings: Settings, store: SqliteJobStore
) -> None:
    job = new_job(store, [("cyclo4.jpg", "a.jpg")], [])
    handle_image(store, settings, job.id, 0, RecordingQueue().enqueue)
    (settings.root / "a.jpg").unlink()
    assert handle_image(store, settings, job.id, 0, RecordingQueue().enqueue) == "skip"
    assert not (settings.root / "a.jpg").exists()


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
