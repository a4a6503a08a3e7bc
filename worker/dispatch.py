"""Enqueueing images: by task name, so the API never imports the task code."""

from __future__ import annotations

from collections.abc import Iterable

from celery import Celery

from worker.celery_app import QUEUE, TASK_NAME


def enqueue_images(app: Celery, job_id: str, indices: Iterable[int]) -> None:
    """Send one task per image index of a job, over one broker connection."""
    with app.producer_or_acquire() as producer:
        for index in indices:
            app.send_task(TASK_NAME, args=(job_id, index), queue=QUEUE, producer=producer)
