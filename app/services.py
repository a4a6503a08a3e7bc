"""What the views use: settings, the job store, the queue. One set per app."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from celery import Celery
from flask import current_app

from worker.broker import Held
from worker.celery_app import OWN_TRANSPORT, make_celery
from worker.dispatch import enqueue_images, task_messages
from worker.queue import queue_depth
from worker.settings import Settings
from worker.store import JobStore, open_store

Enqueue = Callable[[str, list[range]], None]
"""Send one task per range of a job's image indices."""
TaskMessages = Callable[[str, list[range]], list[Held]]
"""Build those tasks' messages without sending them, for the job store to push."""


@dataclass
class Services:
    """The API's collaborators, made once in create_app and replaceable in tests."""

    settings: Settings
    store: JobStore
    enqueue: Enqueue
    queue_depth: Callable[[], int]
    broker_ping: Callable[[], None]
    task_messages: TaskMessages | None = None
    """Set when the store and the broker are one Redis (imgserve's own transport) and task
    events are off: the store then pushes a new job's first tasks in the script that
    stores the job."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Services:
        """Open the store and the broker these settings name."""
        celery = make_celery(settings)
        # With task events on (Flower), each publish also sends a task-sent event at once,
        # which would announce tasks before their job is stored: enqueue after storing.
        one_redis = celery.conf.broker_transport == OWN_TRANSPORT and not settings.task_events
        return cls(
            settings=settings,
            store=open_store(settings),
            enqueue=lambda job_id, batches: enqueue_images(celery, job_id, batches),
            queue_depth=lambda: queue_depth(celery),
            broker_ping=lambda: _broker_ping(celery),
            task_messages=(
                (lambda job_id, batches: task_messages(celery, job_id, batches))
                if one_redis
                else None
            ),
        )


def _broker_ping(celery: Celery) -> None:
    """Raise unless the broker accepts a connection within a second or two."""
    with celery.connection_for_write() as connection:
        connection.ensure_connection(max_retries=1, timeout=2)


def services() -> Services:
    """Return the current app's services."""
    found: Services = current_app.extensions["imgserve"]
    return found
