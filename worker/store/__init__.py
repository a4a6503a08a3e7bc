"""The job store: one record per job, shared by the API and every worker.

Two back ends keep one contract (``protocol.JobStore``; tests/worker/test_store.py
runs one suite against both, tests/worker/test_store_model.py holds both to the
reference state machine ``worker.jobs.Job``): Redis, when ``REDIS_URL`` is set,
and SQLite under ``IMGSERVE_STATE_DIR`` for the embedded default. Every change is
atomic (a Lua script from ``lua/``, or one SQLite transaction), bumps the job's
``version`` and wakes long-polls waiting on it (Redis: pub/sub; SQLite: a 50 ms poll).

The package's parts::

    protocol.py       JobStore, and the values it takes and gives (Move, Finish, Step, Peek)
    errors.py         StoreError and its tree
    metrics.py        the counters behind /metrics (Stats)
    redis_store.py    the Redis back end
    redis_scripts.py  its keys, and what its scripts (lua/*.lua) take and give
    redis_changes.py  long-poll wake-ups over Redis pub/sub
    redis_liveness.py its heartbeats and reaper calls (see worker.liveness)
    sqlite_store.py   the embedded back end, its tables in sqlite_schema.sql
    sqlite_db.py      its file: a connection a thread, transactions
    sqlite_liveness.py  its holders and heartbeats
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from worker.store.errors import (
    InputInUse,
    OutputsBusy,
    StoreError,
    StoreTimedOut,
    StoreUnavailable,
    TooManyActive,
)
from worker.store.metrics import BUCKETS, OperationTimes, Stats
from worker.store.protocol import Admission, Finish, JobStore, Move, Peek, Step

if TYPE_CHECKING:
    from worker.settings import Settings

__all__ = [
    "BUCKETS",
    "Admission",
    "Finish",
    "InputInUse",
    "JobStore",
    "Move",
    "OperationTimes",
    "OutputsBusy",
    "Peek",
    "Stats",
    "Step",
    "StoreError",
    "StoreTimedOut",
    "StoreUnavailable",
    "TooManyActive",
    "open_store",
]


def open_store(settings: Settings) -> JobStore:
    """Open the store the settings ask for: Redis with REDIS_URL, else SQLite."""
    if settings.redis_url:
        from worker.store.redis_store import RedisJobStore

        return RedisJobStore.from_url(
            settings.redis_url,
            ttl=settings.job_ttl,
            stale_after=settings.stale_after,
            admission=Admission.of(settings),
            time_limit=settings.hard_time_limit,
        )
    from worker.store.sqlite_store import SqliteJobStore

    return SqliteJobStore(
        settings.state_dir / "jobs.sqlite3",
        ttl=settings.job_ttl,
        stale_after=settings.stale_after,
        admission=Admission.of(settings),
        time_limit=settings.hard_time_limit,
    )
