"""One SQLite file used by many threads and processes: a connection each, transactions.

The embedded job store (``sqlite_store``) keeps its tables here. Each thread of each
process has its own connection (a fork opens a new one), in WAL mode so readers
never wait for the writer; a write transaction begins ``IMMEDIATE``, so two writers
queue instead of failing halfway. A file that cannot be used for now (a full disk,
a lock held too long, an unreadable folder) is StoreUnavailable, never a crash.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from worker.store.errors import StoreUnavailable

SCHEMA = resources.files("worker.store").joinpath("sqlite_schema.sql").read_text("utf-8")
SCHEMA_VERSION = 2
"""The PRAGMA user_version that sqlite_schema.sql sets."""


class Database:
    """The job store's SQLite file, its tables made on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        with self.unavailable():
            path.parent.mkdir(parents=True, exist_ok=True)
            db = self.connection()
            if db.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                db.executescript(f"BEGIN IMMEDIATE;\n{SCHEMA}\nCOMMIT;")

    def connection(self) -> sqlite3.Connection:
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

    def close(self) -> None:
        """Close this thread's connection (the next use opens another)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def unavailable(self) -> Iterator[None]:
        """Turn a full, locked or unreadable database into StoreUnavailable."""
        try:
            yield
        except (sqlite3.OperationalError, OSError) as exc:
            # No path: the sentence reaches clients in 503 answers.
            raise StoreUnavailable(f"the job database cannot be used: {exc}") from exc

    @contextmanager
    def transaction(self, begin: str = "BEGIN IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """Run a block as one transaction (a write transaction unless begin says otherwise)."""
        with self.unavailable():
            db = self.connection()
            db.execute(begin)
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
