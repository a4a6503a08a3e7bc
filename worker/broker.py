"""A broker message for the job store to push with its job: no longer built anywhere.

The stores' ``create`` still accepts ``messages`` (worker/store, owned elsewhere) and names
this type; the API stores a job, then enqueues it through ``worker.job_queue.JobQueue``.
Delete this module once ``JobStore.create`` drops ``messages``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Held:
    """A message to push onto the Redis list key: payload as kombu serialised it."""

    key: str
    payload: str
