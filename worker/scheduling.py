"""How a job's images are split into tasks: batch sizes, hand-offs and the guided share.

Each job keeps at most ``IMGSERVE_JOB_WINDOW`` tasks in the queue and each finished
task enqueues the job's next one at the back, so jobs take turns: a small job never
waits for a large batch to drain. A task is one image, except that a job's cheap
images are grouped so a task runs for about ``IMGSERVE_BATCH_MS`` (a Celery task costs
a few ms of CPU around its work, as much as a small image's whole processing).
"""

from __future__ import annotations

import time

from worker.images import soft_limit_error
from worker.settings import Settings

MAX_BATCH = 32
"""Images one task may take at most, however cheap they are."""

HANDOFF_AFTER = 3
"""A task that has run this many times IMGSERVE_BATCH_MS hands its other images on."""


def batch_size(seconds: list[float], settings: Settings) -> int:
    """Return how many images the job's next task takes, from how long these ones took.

    Cheap images are grouped so that a task runs for about IMGSERVE_BATCH_MS,
    expensive ones go one per task.
    """
    if not seconds:
        return 1
    per_image = sum(seconds) / len(seconds)
    return max(1, min(MAX_BATCH, int(settings.batch_ms / 1000 / max(per_image, 1e-6))))


def should_hand_off(began: float, error: str | None, settings: Settings) -> bool:
    """Return whether a task should hand its images not started to a new task.

    began: the task's start on time.perf_counter's clock. At the soft time limit the
    hard one follows soon; past HANDOFF_AFTER budgets the batch was sized from cheaper
    images than these, and time limits and the other jobs' turns are per task.
    """
    budget = HANDOFF_AFTER * settings.batch_ms / 1000
    return error == soft_limit_error(settings) or time.perf_counter() - began > budget


def guided_share(settings: Settings, pool_size: int) -> int:
    """Return how many processes may work on one job: the job window, at most the pool.

    A task claims at most 1/share of the job's images left (guided scheduling), so
    batches shrink toward the job's end and its processes finish together.
    """
    return max(1, min(settings.job_window, pool_size))
