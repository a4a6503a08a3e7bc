"""A full state folder is transient for the SQLite store: nothing written, then it writes again."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import fill, small_tmpfs, start_image
from tests.support import make_job as make_stored_job
from worker.jobs import Job, new_job_id
from worker.store import StoreUnavailable
from worker.store.sqlite_store import SqliteJobStore


def make_job(images: int) -> Job:
    """Return a new job of n images, writing a folder of its own (one writer an output)."""
    return make_stored_job(images, folder=f"out/{new_job_id()}")


def test_a_write_to_a_full_disk_is_store_unavailable_and_the_store_recovers(
    tmp_path: Path,
) -> None:
    with small_tmpfs(tmp_path / "state", 1024) as state:
        store = SqliteJobStore(state / "jobs.sqlite3", ttl=3600)
        first = make_job(2)
        store.create(first, window=2)
        filler = fill(state)
        big = make_job(1000)
        with pytest.raises(StoreUnavailable) as raised:
            store.create(big, window=2)
        assert str(raised.value) == "the job database cannot be used: database or disk is full"
        assert store.get(big.id) is None
        filler.unlink()
        assert start_image(store, first.id, 0, max_attempts=3) == "run"  # same connection
        assert store.create(big, window=2) == [0, 1]
        assert store.unfinished_jobs() == [first.id, big.id]
