"""API fixtures: an app over a real SQLite store and a recording queue, flaskr-style."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
import pytest
from celery import Celery
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.backends import Backends
from tests.support import RecordingQueue
from worker.job_queue import JobQueue
from worker.settings import Settings
from worker.store import JobStore
from worker.store.sqlite_store import SqliteJobStore


class RecordedJobQueue(JobQueue):
    """A JobQueue whose broker is a RecordingQueue: submit runs as it does on a real one."""

    def __init__(self, store: JobStore, recording: RecordingQueue, *, window: int) -> None:
        super().__init__(Celery("imgserve-tests"), store, window=window, retry=False)
        self.recording = recording

    def enqueue(self, job_id: str, batches: Iterable[range]) -> None:
        """Record the tasks, or fail as the recording queue is told to."""
        self.recording.enqueue(job_id, list(batches))

    def depth(self) -> int:
        """Return how many enqueues were recorded."""
        return len(self.recording.sent)

    def ping(self) -> None:
        """Answer, as a broker that is up."""


@pytest.fixture
def root(tmp_path: Path, seed_images: list[Path]) -> Path:
    """Return a storage root holding the seed photos in photos/ and a small PNG."""
    storage = tmp_path / "storage"
    (storage / "photos").mkdir(parents=True)
    for photo in seed_images:
        shutil.copy(photo, storage / "photos" / photo.name)
    gradient = np.tile(np.arange(64, dtype=np.uint8), (48, 1))
    cv2.imwrite(str(storage / "small.png"), cv2.merge([gradient, gradient, gradient]))
    return storage


@pytest.fixture
def settings(root: Path, tmp_path: Path) -> Settings:
    """Return settings over the test root, with a small job window."""
    return Settings(root=root, state_dir=tmp_path / "state", job_window=2, max_images=10)


@pytest.fixture
def queue() -> RecordingQueue:
    """Return the recording queue the app enqueues into."""
    return RecordingQueue()


@pytest.fixture
def backends(settings: Settings, queue: RecordingQueue) -> Backends:
    """Return the app's backends: a real SQLite store, a recording queue."""
    store = SqliteJobStore(settings.state_dir / "jobs.sqlite3", ttl=settings.job_ttl)
    return Backends(settings, RecordedJobQueue(store, queue, window=settings.job_window))


@pytest.fixture
def app(settings: Settings, backends: Backends) -> Flask:
    """Return the API app under test."""
    return create_app({"TESTING": True, "SETTINGS": settings, "BACKENDS": backends})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client of the app."""
    return app.test_client()
