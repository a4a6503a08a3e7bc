"""Worker fixtures: settings over a root of real photos, and a SQLite store beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from worker.settings import Settings
from worker.store.sqlite_store import SqliteJobStore


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
