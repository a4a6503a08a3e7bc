"""Enqueueing images: by task name, so the API never imports the task code."""

from __future__ import annotations

from collections.abc import Iterable

from celery import Celery

from worker.celery_app import QUEUE, TASK_NAME


def enqueue_images(app: Celery, job_id: str, batches: Iterable[range]) -> None:
    """Send one task per batch (a range of a job's image indices), over one connection."""
    with app.producer_or_acquire() as producer:
        for batch in batches:
            args = (job_id, batch.start, len(batch))
            app.send_task(TASK_NAME, args=args, queue=QUEUE, producer=producer)
