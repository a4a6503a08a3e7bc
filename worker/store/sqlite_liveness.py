"""The embedded store's part of worker liveness: image holders and heartbeats in SQLite.

Tables ``holders`` (one row per running image) and ``workers`` (each node's last
heartbeat), in ``sqlite_schema.sql``. The functions run inside the caller's
transaction, so a start or a reap judges the holders by one consistent view;
``SqliteLiveness`` is the store's heartbeat and reaper methods over them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from worker.jobs import ImageRecord, ImageState, Job, Lost
from worker.liveness import FORGET_AFTER, Beat, Holder, Liveness
from worker.store.sqlite_db import Database


def load_holders(db: sqlite3.Connection, job: Job) -> None:
    """Give the job's running images their holders."""
    query = "SELECT idx, node, pid, until FROM holders WHERE job_id = ?"
    for row in db.execute(query, (job.id,)):
        job.images[row["idx"]].holder = Holder(row["node"], row["pid"], row["until"])


def save_holders(db: sqlite3.Connection, job: Job, indices: list[int]) -> None:
    """Write the holders of these images of the job (a row only while one runs it)."""
    db.executemany(
        "DELETE FROM holders WHERE job_id = ? AND idx = ?", ((job.id, n) for n in indices)
    )
    db.executemany(
        "INSERT INTO holders (job_id, idx, node, pid, until) VALUES (?, ?, ?, ?, ?)",
        (
            (job.id, n, holder.node, holder.pid, holder.until)
            for n in indices
            if (holder := job.images[n].holder) is not None
        ),
    )


def write_beat(db: sqlite3.Connection, node: str, beat: Beat, stale_after: float) -> None:
    """Record a node's heartbeat; forget the nodes silent for FORGET_AFTER x stale_after."""
    db.execute(
        "INSERT OR REPLACE INTO workers (node, at, pids) VALUES (?, ?, ?)",
        (node, beat.at, json.dumps(list(beat.pids))),
    )
    db.execute("DELETE FROM workers WHERE at < ?", (beat.at - FORGET_AFTER * stale_after,))


def read_beats(db: sqlite3.Connection, node: str | None = None) -> dict[str, Beat]:
    """Return every node's last heartbeat, or only node's."""
    query = "SELECT node, at, pids FROM workers"
    rows = db.execute(query) if node is None else db.execute(f"{query} WHERE node = ?", (node,))
    return {row["node"]: Beat(row["at"], tuple(json.loads(row["pids"]))) for row in rows}


def lost_holders(
    db: sqlite3.Connection, now: float, stale_after: float, time_limit: float, *,
    silence: bool = True,
) -> Lost:  # fmt: skip
    """Return whether a running image's holder is gone, by the heartbeats db holds now.

    A start asks about one image at most: its holder's heartbeat is read then, not before.
    """

    def lost(image: ImageRecord) -> bool:
        holder = image.holder
        beats = {} if holder is None else read_beats(db, holder.node)
        return Liveness(beats, now, stale_after, time_limit, silence).gone(holder, image.started)

    return lost


class SqliteLiveness:
    """The heartbeat and reaper methods of the SQLite store (see protocol.JobStore)."""

    db: Database
    stale_after: float
    time_limit: float
    clock: Callable[[], float]

    def _changing(
        self, job_id: str
    ) -> AbstractContextManager[tuple[sqlite3.Connection, Job | None]]:
        """Load a job for a change in one transaction, then write back what changed."""
        raise NotImplementedError

    def heartbeat(self, node: str, beat: Beat) -> None:
        """Record a worker node's heartbeat over its previous one."""
        with self.db.transaction() as db:
            write_beat(db, node, beat, self.stale_after)

    def workers(self) -> dict[str, Beat]:
        """Return the last heartbeat of each worker node still kept."""
        with self.db.unavailable():
            return read_beats(self.db.connection())

    def lost_jobs(self, *, silence: bool = True) -> list[str]:
        """Return the ids of the jobs with a running image whose holder looks gone."""
        query = (
            "SELECT i.job_id, i.started, h.node, h.pid, h.until FROM images AS i"
            " JOIN jobs AS j ON j.id = i.job_id"
            " LEFT JOIN holders AS h ON h.job_id = i.job_id AND h.idx = i.idx"
            f" WHERE i.state = '{ImageState.RUNNING}' AND j.expires_at >= ?"
        )  # the state as a literal: the partial index images_running serves it
        with self.db.transaction("BEGIN") as db:
            now = self.clock()
            rows = db.execute(query, (now,)).fetchall()
            liveness = Liveness(read_beats(db), now, self.stale_after, self.time_limit, silence)
        lost = {
            row["job_id"]: None
            for row in rows
            if liveness.gone(
                None if row["node"] is None else Holder(row["node"], row["pid"], row["until"]),
                row["started"],
            )
        }
        return list(lost)

    def redeliver_lost(self, job_id: str, *, silence: bool = True) -> list[range]:
        """Queue again the job's running images whose holder is gone (see Job.redeliver_lost)."""
        with self._changing(job_id) as (db, job):
            now = self.clock()
            lost = lost_holders(db, now, self.stale_after, self.time_limit, silence=silence)
            return [] if job is None else job.redeliver_lost(lost, now)

    def release_running(self, job_id: str) -> list[range]:
        """Queue again every running image of the job: the embedded start-up knows them lost.

        It holds the state folder's lock: no other service runs, nor does what the record
        says runs.
        """
        with self._changing(job_id) as (_, job):
            return [] if job is None else job.redeliver_lost(lambda _: True, self.clock())
