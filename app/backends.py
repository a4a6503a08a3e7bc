"""What the API works with: its settings, the job store and the job queue. One set per app."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app

from worker.job_queue import JobQueue
from worker.settings import Settings
from worker.store import JobStore, open_store


@dataclass
class Backends:
    """The API's collaborators, made once in create_app and replaceable in tests."""

    settings: Settings
    queue: JobQueue

    @property
    def store(self) -> JobStore:
        """Return the job store (the queue's own: jobs are submitted into it)."""
        return self.queue.store

    @classmethod
    def from_settings(cls, settings: Settings) -> Backends:
        """Open the store and the broker these settings name."""
        # One publish attempt: a broker that does not answer is a 503 within the API's bound.
        return cls(settings, JobQueue.from_settings(settings, open_store(settings), retry=False))


def backends() -> Backends:
    """Return the current app's backends."""
    found: Backends = current_app.extensions["imgserve"]
    return found
