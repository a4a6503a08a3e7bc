"""How many image tasks wait in the broker's queue, for /metrics."""

from __future__ import annotations

from celery import Celery

from worker.celery_app import QUEUE


def queue_depth(app: Celery) -> int:
    """Return the number of messages waiting in the imgserve queue."""
    with app.connection_for_read() as connection:
        _, count, _ = connection.default_channel.queue_declare(queue=QUEUE, passive=True)
        return int(count)
