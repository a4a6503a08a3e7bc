"""The embedded job store: one SQLite file shared by the API and the workers.

Each change runs the reference transition of ``worker.jobs.Job`` inside one
``BEGIN IMMEDIATE`` transaction, so concurrent worker processes never lose an
update; the counters and what active jobs claim (sqlite_claims) change in the same transaction.
Jobs are counted by state as they change; the next create deletes expired jobs
(and takes them off the counts), and stats() takes off those expired since, found
by an index: no read of every job. Long-polls poll the job's version every 50 ms:
the embedded store is for one machine. Its tables are in ``sqlite_schema.sql``, its
file in ``sqlite_db``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

from worker.jobs import ACTIVE_JOB_STATES, ImageState, Job, JobState
from worker.liveness import HARD_TIME_LIMIT, STALE_AFTER
from worker.store.metrics import Stats, counter_increments, stats_from_counters
from worker.store.protocol import UNLIMITED, Admission, Move, Peek, Step, apply_move, missing_step
from worker.store.sqlite_claims import check_claims, release_claims, take_claims, take_token
from worker.store.sqlite_db import Database
from worker.store.sqlite_liveness import SqliteLiveness, load_holders, lost_holders, save_holders

_JOB_COLUMNS = (
    "state", "started_at", "finished_at", "done", "failed", "cancelled", "running", "next_index",
    "version", "changed_at",
)  # fmt: skip
_POLL_SECONDS = 0.05


class SqliteJobStore(SqliteLiveness):
    """A job store in one SQLite file, safe across threads and processes."""

    def __init__(
        self,
        path: Path,
        *,
        ttl: int,
        stale_after: float = STALE_AFTER,
        time_limit: float = HARD_TIME_LIMIT,
        clock: Callable[[], float] = time.time,
        admission: Admission = UNLIMITED,
    ) -> None:
        self.path = path
        self.ttl = ttl
        self.stale_after = stale_after
        self.time_limit = time_limit
        self.clock = clock
        self.admission = admission
        self.db = Database(path)

    def close(self) -> None:
        """Close this thread's connection to the file."""
        self.db.close()

    def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""
        with self.db.unavailable():
            self.db.connection().execute("SELECT 1").fetchone()

    def create(self, job: Job, *, window: int) -> list[int]:
        """Store a new job and claim its first window of images, unless a claim is refused."""
        first = job.first_window(window)
        now = self.clock()
        with self.db.transaction() as db:
            expired = "FROM jobs WHERE expires_at < ?"
            for row in db.execute(f"SELECT state, COUNT(*) AS n {expired} GROUP BY state", (now,)):
                _count(db, row["state"], -row["n"])
            db.execute(f"DELETE {expired}", (now,))
            check_claims(db, job, self.admission, now)
            db.execute(
                "INSERT INTO jobs (id, spec, created_at, expires_at, state, next_index, changed_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (job.id, json.dumps(job.spec()), job.created_at, job.created_at + self.ttl,
                 job.state, len(first), job.created_at),
            )  # fmt: skip
            db.executemany(
                "INSERT INTO images (job_id, idx, state) VALUES (?, ?, ?)",
                ((job.id, i, image.state) for i, image in enumerate(job.images)),
            )
            _count(db, job.state, 1)
            take_claims(db, job)
        return first

    def admit(self, owner: str, *, rate: float, burst: int) -> float:
        """Take a submission token from owner's bucket, in one transaction."""
        with self.db.transaction() as db:
            return take_token(db, owner, rate, burst, self.clock())

    def get(self, job_id: str) -> Job | None:
        """Return the job as stored, or None."""
        with self.db.unavailable():
            return self._load(self.db.connection(), job_id)

    def list_jobs(self, *, limit: int, offset: int, owner: str | None = None) -> list[Job]:
        """Return recent jobs, newest first: every job, or only owner's."""
        mine = "" if owner is None else " AND id IN (SELECT job_id FROM job_owners WHERE owner = ?)"
        with self.db.transaction("BEGIN") as db:
            rows = db.execute(
                f"SELECT id FROM jobs WHERE expires_at >= ?{mine} ORDER BY created_at DESC"
                " LIMIT ? OFFSET ?",
                (self.clock(), *(() if owner is None else (owner,)), limit, offset),
            ).fetchall()
            jobs = [self._load(db, row["id"]) for row in rows]
        return [job for job in jobs if job is not None]

    def unfinished_jobs(self) -> list[str]:
        """Return the ids of the jobs that have not finished, oldest first."""
        query = (
            "SELECT id FROM jobs WHERE finished_at IS NULL AND expires_at >= ? ORDER BY created_at"
        )
        with self.db.unavailable():
            return [row["id"] for row in self.db.connection().execute(query, (self.clock(),))]

    def step(self, job_id: str, move: Move) -> Step:
        """Move a job along in one transaction (see Move)."""
        with self._changing(job_id) as (db, job):
            if job is None:
                return missing_step(move)
            now = self.clock()
            lost = lost_holders(db, now, self.stale_after, self.time_limit)
            step, finished = apply_move(job, move, now, lost)
            if finished and move.finish is not None:
                db.executemany(
                    "INSERT INTO stats (name, value) VALUES (?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                    counter_increments(move.finish.error, move.finish.timings),
                )
            return step

    def cancel(self, job_id: str) -> Job | None:
        """Cancel the job's images that have not started."""
        with self._changing(job_id) as (_, job):
            if job is not None:
                job.cancel(self.clock())
        return self.get(job_id)

    def peek(self, job_id: str) -> Peek | None:
        """Return the job's version, whether it is finished and when it last changed."""
        query = "SELECT version, finished_at, changed_at FROM jobs WHERE id = ? AND expires_at >= ?"
        with self.db.unavailable():
            row = self.db.connection().execute(query, (job_id, self.clock())).fetchone()
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
        """Return counts of jobs by state (less those expired since), images and op times."""
        jobs: dict[str, int] = dict.fromkeys(JobState, 0)
        with self.db.transaction("BEGIN") as db:
            for row in db.execute("SELECT state, n FROM job_counts"):
                jobs[row["state"]] = row["n"]
            for row in db.execute(
                "SELECT state, COUNT(*) AS n FROM jobs WHERE expires_at < ? GROUP BY state",
                (self.clock(),),
            ):
                jobs[row["state"]] -= row["n"]
            values = {row["name"]: row["value"] for row in db.execute("SELECT * FROM stats")}
        return stats_from_counters({str(s): n for s, n in jobs.items()}, values)

    @contextmanager
    def _changing(self, job_id: str) -> Iterator[tuple[sqlite3.Connection, Job | None]]:
        """Load a job for a change in one transaction, then write back what changed."""
        with self.db.transaction() as db:
            job = self._load(db, job_id)
            if job is None:
                yield db, None
                return
            state = job.state
            before = [(i.state, i.attempts, i.error, i.started) for i in job.images]
            claimed = set(job.claims)
            holders = [i.holder for i in job.images]
            yield db, job
            db.executemany(
                "INSERT INTO claims (job_id, key, first, taken) VALUES (?, ?, ?, ?)",
                ((job.id, k, r.start, len(r)) for k, r in job.claims.items() if k not in claimed),
            )
            save_holders(db, job, [n for n, i in enumerate(job.images) if i.holder != holders[n]])
            db.execute(
                f"UPDATE jobs SET {', '.join(f'{c} = ?' for c in _JOB_COLUMNS)} WHERE id = ?",
                (*(getattr(job, c) for c in _JOB_COLUMNS), job.id),
            )
            db.executemany(
                "UPDATE images SET state = ?, attempts = ?, error = ?, started = ?"
                " WHERE job_id = ? AND idx = ?",
                (
                    (*after, job.id, n)
                    for n, i in enumerate(job.images)
                    if (after := (i.state, i.attempts, i.error, i.started)) != before[n]
                ),
            )
            if job.state != state:
                _count(db, state, -1)
                _count(db, job.state, 1)
            if job.state not in ACTIVE_JOB_STATES:
                release_claims(db, job.id)

    def _load(self, db: sqlite3.Connection, job_id: str) -> Job | None:
        """Read one job and its images."""
        row = db.execute(
            "SELECT * FROM jobs WHERE id = ? AND expires_at >= ?", (job_id, self.clock())
        ).fetchone()
        if row is None:
            return None
        job = Job.from_spec(json.loads(row["spec"]))
        for column in _JOB_COLUMNS:
            setattr(job, column, row[column])
        job.state = JobState(row["state"])
        for image_row in db.execute(
            "SELECT idx, state, attempts, error, started FROM images WHERE job_id = ?", (job_id,)
        ):
            image = job.images[image_row["idx"]]
            image.state = ImageState(image_row["state"])
            image.attempts, image.error = image_row["attempts"], image_row["error"]
            image.started = image_row["started"]
        for claim in db.execute("SELECT key, first, taken FROM claims WHERE job_id = ?", (job_id,)):
            job.claims[claim["key"]] = range(claim["first"], claim["first"] + claim["taken"])
        load_holders(db, job)
        return job


def _count(db: sqlite3.Connection, state: str, change: int) -> None:
    """Add change to the count of jobs in state."""
    db.execute(
        "INSERT INTO job_counts (state, n) VALUES (?, ?)"
        " ON CONFLICT (state) DO UPDATE SET n = n + excluded.n",
        (state, change),
    )
