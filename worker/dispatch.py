"""Enqueueing from the worker's tasks: ``JobQueue``'s publish, with Celery's retry.

worker/tasks.py imports this; once it enqueues through a ``JobQueue``, delete this module.
"""

from __future__ import annotations

from collections.abc import Iterable

from celery import Celery

from worker.job_queue import publish


def enqueue_images(app: Celery, job_id: str, batches: Iterable[range]) -> None:
    """Send one task per batch (a range of a job's image indices)."""
    publish(app, job_id, batches, retry=True)
