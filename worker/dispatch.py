"""Enqueueing images: by task name, so the API never imports the task code."""

from __future__ import annotations

from collections.abc import Iterable

from celery import Celery
from kombu.messaging import Producer

from worker.broker import Held, holding
from worker.celery_app import QUEUE, TASK_NAME


def enqueue_images(app: Celery, job_id: str, batches: Iterable[range]) -> None:
    """Send one task per batch (a range of a job's image indices), in one round trip.

    kombu's publish batch pipelines the pushes where the transport can (Redis); the
    filesystem transport writes one file a task.
    """
    with app.producer_or_acquire() as producer, producer.batch():
        _send(app, producer, job_id, batches)


def task_messages(app: Celery, job_id: str, batches: list[range]) -> list[Held]:
    """Build the tasks' messages without sending them, for the job store to push.

    Only for imgserve's own Redis transport (worker.broker); any other sends at once.
    """
    with holding() as held, app.producer_or_acquire() as producer:
        _send(app, producer, job_id, batches)
    if len(held) != len(batches):
        raise RuntimeError(f"the broker sent {len(batches) - len(held)} task(s) it should hold")
    return held


def _send(app: Celery, producer: Producer, job_id: str, batches: Iterable[range]) -> None:
    """Publish one task per batch through producer."""
    for batch in batches:
        args = (job_id, batch.start, len(batch))
        app.send_task(TASK_NAME, args=args, queue=QUEUE, producer=producer)
