"""The embedded job store: one SQLite file shared by the API and the workers.

Each change runs the reference transition of ``worker.jobs.Job`` inside one
``BEGIN IMMEDIATE`` transaction, so concurrent worker processes never lose an
update. WAL mode lets the API read while a worker writes. Long-polls poll the
job's version every 50 ms: the embedded store is for one machine.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from worker.jobs import JOB_STATES, ImageRecord, Job
from worker.store import (
    Finish,
    Peek,
    SingleSteps,
    Stats,
    Step,
    StoreUnavailable,
    counter_increments,
    stats_from_counters,
)

if TYPE_CHECKING:
    from worker.broker import Held

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    state TEXT NOT NULL,
    started_at REAL,
    finished_at REAL,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    running INTEGER NOT NULL DEFAULT 0,
    next_index INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    changed_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_by_created ON jobs (created_at DESC);
CREATE TABLE IF NOT EXISTS images (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    started REAL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stats (name TEXT PRIMARY KEY, value REAL NOT NULL) WITHOUT ROWID;
"""

_JOB_COLUMNS = (
    "state", "started_at", "finished_at", "done", "failed", "cancelled", "running", "next_index",
    "version", "changed_at",
)  # fmt: skip
_POLL_SECONDS = 0.05
_TRANSIENT = (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_BUSY)  # nothing written


class SqliteJobStore(SingleSteps):
    """A job store in one SQLite file, safe across threads and processes."""

    def __init__(self, path: Path, *, ttl: int) -> None:
        self.path = path
        self.ttl = ttl
        self._local = threading.local()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._connection().executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the job database {path} cannot be used: {exc}") from exc

    def _connection(self) -> sqlite3.Connection:
        """Return this thread's connection (a new one after a fork)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run a block as one write transaction."""
        try:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the job database {self.path} cannot be used: {exc}") from exc
        try:
            yield db
            db.execute("COMMIT")
        except BaseException as exc:
            if db.in_transaction:  # a full disk may have rolled it back already
                db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode & 0xFF in _TRANSIENT:
                raise StoreUnavailable(f"the job database cannot be written: {exc}") from exc
            raise

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        try:
            self._connection().execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"the job database {self.path} cannot be used: {exc}") from exc

    def create(self, job: Job, *, window: int, messages: Sequence[Held] = ()) -> list[int]:
        """Store a new job and claim its first window of images."""
        if messages:
            raise ValueError("the SQLite store cannot push broker messages")
        first = job.first_window(window)
        job.next_index = len(first)
        with self._transaction() as db:
            db.execute("DELETE FROM jobs WHERE expires_at < ?", (time.time(),))
            db.execute(
                "INSERT INTO jobs (id, spec, created_at, expires_at, state, next_index, changed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job.id, json.dumps(job.spec()), job.created_at, job.created_at + self.ttl,
                 job.state, job.next_index, job.created_at),
            )  # fmt: skip
            db.executemany(
                "INSERT INTO images (job_id, idx) VALUES (?, ?)",
                ((job.id, i) for i in range(job.total)),
            )
        return first

    def get(self, job_id: str) -> Job | None:
        """Return the job, or None."""
        return self._load(self._connection(), job_id)

    def list_jobs(self, *, limit: int, offset: int) -> list[Job]:
        """Return recent jobs, newest first."""
        db = self._connection()
        rows = db.execute(
            "SELECT id FROM jobs WHERE expires_at >= ? ORDER BY created_at DESC LIMIT ? OFFSET ?",
            (time.time(), limit, offset),
        ).fetchall()
        jobs = (self._load(db, row["id"]) for row in rows)
        return [job for job in jobs if job is not None]

    def unfinished_jobs(self) -> list[str]:
        """Return the ids of the jobs that have not finished, oldest first."""
        query = (
            "SELECT id FROM jobs WHERE finished_at IS NULL AND expires_at >= ? ORDER BY created_at"
        )
        return [row["id"] for row in self._connection().execute(query, (time.time(),))]

    def step(
        self,
        job_id: str,
        *,
        finish: Finish | None = None,
        start: int | None = None,
        claim: int = 0,
        window: int = 1,
        max_attempts: int = 3,
        spec: bool = False,
    ) -> Step:
        """Move a job along in one transaction (see JobStore.step)."""
        now = time.time()

        def transition(job: Job) -> tuple[bool, Step]:
            finished = finish is not None and job.finish_image(
                finish.index, error=finish.error, now=now
            )
            started = (
                None
                if start is None
                else job.start_image(start, max_attempts=max_attempts, now=now)
            )
            claimed = job.claim_next(count=claim, window=window) if claim > 0 else range(0)
            ran = started in ("run", "gave_up")
            attempt = job.images[start].attempts if start is not None and ran else 0
            made = Job.from_spec(job.spec()) if spec else None
            return finished, Step(started, claimed, made, attempt)

        missing = (False, Step(None if start is None else "skip", range(0), None))
        finished, step = self._change(job_id, transition, missing)
        if finished and finish is not None:
            self._record_stats("failed" if finish.error else "succeeded", finish.timings)
        return step

    def cancel(self, job_id: str) -> Job | None:
        """Cancel the job's images that have not started."""
        now = time.time()
        self._change(job_id, lambda job: job.cancel(now), None)
        return self.get(job_id)

    def reap_stale(self, job_id: str, *, older_than: float) -> int:
        """Fail the images whose worker is gone."""
        now = time.time()
        return self._change(job_id, lambda job: job.reap(older_than=older_than, now=now), 0)

    def peek(self, job_id: str) -> Peek | None:
        """Return the job's version, whether it is finished and when it last changed."""
        row = (
            self._connection()
            .execute(
                "SELECT version, finished_at, changed_at FROM jobs"
                " WHERE id = ? AND expires_at >= ?",
                (job_id, time.time()),
            )
            .fetchone()
        )
        if row is None:
            return None
        return Peek(row["version"], row["finished_at"] is not None, row["changed_at"] or 0.0)

    def following(self, job_id: str) -> AbstractContextManager[None]:
        """Nothing to set up: every wait polls the job."""
        return nullcontext()

    def wait(self, job_id: str, *, version: int, timeout: float, coalesce: float = 0.0) -> None:
        """Return once the job changed (polled every 50 ms), or after timeout."""
        started = time.monotonic()
        deadline, settle_at = started + timeout, started + coalesce
        changed = False
        while (now := time.monotonic()) < deadline:
            seen = self.peek(job_id)
            if seen is None or seen.finished:
                return
            changed = changed or seen.version != version
            if changed and now >= settle_at:
                return
            time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def stats(self) -> Stats:
        """Return counts of jobs by state, images by outcome, and operation times."""
        db = self._connection()
        jobs: dict[str, int] = dict.fromkeys(JOB_STATES, 0)
        for row in db.execute(
            "SELECT state, COUNT(*) AS n FROM jobs WHERE expires_at >= ? GROUP BY state",
            (time.time(),),
        ):
            jobs[row["state"]] = row["n"]
        values = {row["name"]: row["value"] for row in db.execute("SELECT name, value FROM stats")}
        return stats_from_counters(jobs, values)

    def _record_stats(self, outcome: str, timings: list[tuple[str, float]]) -> None:
        """Add one image's outcome and step times to the counters."""
        with self._transaction() as db:
            db.executemany(
                "INSERT INTO stats (name, value) VALUES (?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                counter_increments(outcome, timings),
            )

    def _change(self, job_id: str, transition: Callable[[Job], T], missing: T) -> T:
        """Apply a transition to the job in one transaction and write back what changed."""
        with self._transaction() as db:
            job = self._load(db, job_id)
            if job is None:
                return missing
            before = [(i.state, i.attempts, i.error, i.started) for i in job.images]
            result = transition(job)
            db.execute(
                f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in _JOB_COLUMNS)} WHERE id = ?",
                (*(getattr(job, c) for c in _JOB_COLUMNS), job.id),
            )
            db.executemany(
                "UPDATE images SET state = ?, attempts = ?, error = ?, started = ?"
                " WHERE job_id = ? AND idx = ?",
                (
                    (i.state, i.attempts, i.error, i.started, job.id, n)
                    for n, i in enumerate(job.images)
                    if (i.state, i.attempts, i.error, i.started) != before[n]
                ),
            )
            return result

    def _load(self, db: sqlite3.Connection, job_id: str) -> Job | None:
        """Read one job and its images."""
        row = db.execute(
            "SELECT * FROM jobs WHERE id = ? AND expires_at >= ?", (job_id, time.time())
        ).fetchone()
        if row is None:
            return None
        job = Job.from_spec(json.loads(row["spec"]))
        for column in _JOB_COLUMNS:
            setattr(job, column, row[column])
        for image_row in db.execute(
            "SELECT idx, state, attempts, error, started FROM images WHERE job_id = ?", (job_id,)
        ):
            image: ImageRecord = job.images[image_row["idx"]]
            image.state = image_row["state"]
            image.attempts, image.error = image_row["attempts"], image_row["error"]
            image.started = image_row["started"]
        return job
