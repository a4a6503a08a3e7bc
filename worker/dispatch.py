"""Enqueueing images: by task name, so the API never imports the task code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from celery import Celery
from kombu.messaging import Producer

from worker.broker import Held, Transport, holding
from worker.celery_app import QUEUE, TASK_NAME


def enqueue_images(app: Celery, job_id: str, batches: Iterable[range]) -> None:
    """Send one task per batch (a range of a job's image indices).

    Several tasks go in one round trip where the transport can (kombu's publish batch on
    Redis; the filesystem transport writes one file a task). A single task is published
    on its own: a batch is sent only when it closes, outside Celery's publish retry.
    """
    tasks = list(batches)
    with (
        app.producer_or_acquire() as producer,
        producer.batch() if len(tasks) > 1 else contextlib.nullcontext(),
    ):
        _send(app, producer, job_id, tasks)


def task_messages(app: Celery, job_id: str, batches: list[range]) -> list[Held]:
    """Build the tasks' messages without sending them, for the job store to push.

    Only imgserve's own Redis transport (worker.broker) can hold them back; any other
    is refused before anything is sent.
    """
    with holding() as held, app.producer_or_acquire() as producer:
        transport = producer.connection.transport  # its class only: nothing is connected
        if not isinstance(transport, Transport):
            raise RuntimeError(f"the broker's transport cannot hold messages: {transport}")
        _send(app, producer, job_id, batches)
    return held


def _send(app: Celery, producer: Producer, job_id: str, batches: Iterable[range]) -> None:
    """Publish one task per batch through producer."""
    for batch in batches:
        args = (job_id, batch.start, len(batch))
        app.send_task(TASK_NAME, args=args, queue=QUEUE, producer=producer)
