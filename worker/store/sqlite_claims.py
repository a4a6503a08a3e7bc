"""What a new job claims in the embedded store, checked and taken in create's transaction.

A job claims its outputs (one writer each), its inputs (no output over them while it is
queued or running, with shared roots) and a place among its owner's active jobs; an owner
also has a token bucket for its submissions. Each table is in ``sqlite_schema.sql``.
"""

from __future__ import annotations

import sqlite3

from worker.jobs import Job, JobState
from worker.store.errors import InputInUse, OutputsBusy, TooManyActive
from worker.store.protocol import Admission, input_claims, output_claims, token_bucket

_CHUNK = 500
"""Paths looked up in one query (SQLite caps a statement's parameters)."""


def check_claims(db: sqlite3.Connection, job: Job, admission: Admission, now: float) -> None:
    """Raise TooManyActive, OutputsBusy or InputInUse (in that order) for a new job."""
    limit = admission.max_active
    if job.owner is not None and limit is not None:
        (active,) = db.execute(
            "SELECT COUNT(*) FROM job_owners JOIN jobs ON jobs.id = job_owners.job_id"
            " WHERE owner = ? AND state IN (?, ?) AND expires_at >= ?",
            (job.owner, JobState.QUEUED, JobState.RUNNING, now),
        ).fetchone()
        if active >= limit:
            raise TooManyActive(job.owner, limit)
    claims = output_claims(job)
    keys = [key for key, _, _ in claims]
    busy = _lookup(db, "SELECT path, job_id FROM outputs WHERE path IN ({})", keys)
    for key, index, output in claims:
        if key in busy:
            raise OutputsBusy(index, output, busy[key])
    if not admission.inputs_shared:
        return
    # The first reader is the one that expires first (then the smallest id), as the Redis
    # store answers: its readers of a path are a sorted set by expiry. The last row stays.
    readers = _lookup(
        db,
        "SELECT path, job_id FROM inputs JOIN jobs ON jobs.id = inputs.job_id"
        " WHERE path IN ({}) ORDER BY expires_at DESC, job_id DESC",
        keys,
    )
    for key, index, output in claims:
        if key in readers:
            raise InputInUse(index, output, readers[key])


def take_claims(db: sqlite3.Connection, job: Job) -> None:
    """Record a new job's outputs, inputs and owner."""
    db.executemany(
        "INSERT OR REPLACE INTO outputs (path, job_id) VALUES (?, ?)",
        ((key, job.id) for key, _, _ in output_claims(job)),
    )
    db.executemany(
        "INSERT INTO inputs (path, job_id) VALUES (?, ?)",
        ((path, job.id) for path in input_claims(job)),
    )
    if job.owner is not None:
        db.execute("INSERT INTO job_owners (job_id, owner) VALUES (?, ?)", (job.id, job.owner))


def release_claims(db: sqlite3.Connection, job_id: str) -> None:
    """Let go of a job's outputs and inputs once it is neither queued nor running."""
    db.execute("DELETE FROM outputs WHERE job_id = ?", (job_id,))
    db.execute("DELETE FROM inputs WHERE job_id = ?", (job_id,))


def take_token(db: sqlite3.Connection, owner: str, rate: float, burst: int, now: float) -> float:
    """Take a token from owner's bucket; return 0, or the seconds to wait for one."""
    row = db.execute("SELECT tokens, at FROM rates WHERE owner = ?", (owner,)).fetchone()
    tokens, at = (row["tokens"], row["at"]) if row else (float(burst), now)
    left, wait = token_bucket(tokens, at, now, rate, burst)
    db.execute(
        "INSERT OR REPLACE INTO rates (owner, tokens, at) VALUES (?, ?, ?)",
        (owner, left, max(at, now)),
    )
    return wait


def _lookup(db: sqlite3.Connection, query: str, keys: list[str]) -> dict[str, str]:
    """Return path -> job id for the rows query finds among keys, a chunk at a time."""
    found: dict[str, str] = {}
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        rows = db.execute(query.format(", ".join("?" * len(chunk))), chunk)
        found.update((row["path"], row["job_id"]) for row in rows)
    return found
