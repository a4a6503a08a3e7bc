"""API fixtures: an app over a real SQLite store and a recording queue, flaskr-style."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.services import Services
from tests.support import RecordingQueue
from worker.settings import Settings
from worker.store.sqlite_store import SqliteJobStore


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
def services(settings: Settings, queue: RecordingQueue) -> Services:
    """Return the app's services: a real SQLite store, a recording queue."""
    return Services(
        settings=settings,
        store=SqliteJobStore(settings.state_dir / "jobs.sqlite3", ttl=settings.job_ttl),
        enqueue=queue.enqueue,
        queue_depth=lambda: len(queue.sent),
        broker_ping=lambda: None,
    )


@pytest.fixture
def app(settings: Settings, services: Services) -> Flask:
    """Return the API app under test."""
    return create_app({"TESTING": True, "SETTINGS": settings, "SERVICES": services})


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Return a test client of the app."""
    return app.test_client()
