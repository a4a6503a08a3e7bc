"""Start-up of the embedded default: redeliver what a dead service left unfinished.

After the whole service was killed, the filesystem queue still holds the messages no
worker had taken, but those a worker had taken (prefetched or running) died with it:
their images stay ``queued`` or ``running`` with nothing left to run them. The job
record knows every image handed to a task (those below the job's ``next_index``), so
at start-up, holding the state folder's lock and before any worker runs, the queue
is emptied, the images the record says run are queued again (no worker runs: their
holders are gone, whatever their last heartbeats said), and every unfinished image
below ``next_index`` is enqueued again: none is lost, and none is in two messages,
so none runs twice at once. A job gets as many
tasks as its window; when fewer images are left to redeliver, its next images are
claimed to fill the window, as if its tasks had just finished.

The lock does not cover a separate embedded ``imgserve api``: a job it stores in the
instant of a start-up may have its first tasks enqueued twice (an image then runs
twice, and none is lost).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from worker import file_queue
from worker.celery_app import make_celery, wait_out_full_disk
from worker.job_queue import publish
from worker.jobs import Job
from worker.settings import Settings
from worker.state_folder import lock_state_folder
from worker.store import Move
from worker.store.sqlite_store import SqliteJobStore

Enqueue = Callable[[str, list[range]], None]


@dataclass(frozen=True)
class Redelivered:
    """What start-up found and enqueued again."""

    jobs: int
    images: int
    purged: int
    """Messages removed from the queue (their images are among those enqueued again)."""


def take_over(settings: Settings) -> tuple[int, Redelivered]:
    """Take the state folder's lock, then redeliver what a dead service left unfinished.

    Return the lock's file descriptor (it holds the lock while open) and what was
    redelivered. Raises StateFolderBusy when another service runs the folder.
    """
    lock = lock_state_folder(settings.state_dir)
    celery = make_celery(settings)
    wait_out_full_disk(celery)
    store = SqliteJobStore(settings.state_dir / "jobs.sqlite3", ttl=settings.job_ttl)
    redelivered = redeliver_unfinished(
        store, settings, lambda job_id, batches: publish(celery, job_id, batches, retry=True)
    )
    return lock, redelivered


def redeliver_unfinished(
    store: SqliteJobStore, settings: Settings, enqueue: Enqueue
) -> Redelivered:
    """Empty the queue and enqueue again every image a task was given and did not finish.

    Only the holder of the state folder's lock may call this, before its worker starts.
    """
    purged = file_queue.clear(settings.state_dir / "queue")
    jobs = images = 0
    for job_id in store.unfinished_jobs():
        store.release_running(job_id)
        job = store.get(job_id)
        if job is None:
            continue
        left = unfinished_below_next(job)
        batches = redelivery(left, settings.job_window)
        while len(batches) < settings.job_window:
            claimed = store.step(job_id, Move(claim=1, window=settings.job_window)).claimed
            if not claimed:
                break
            batches.append(claimed)
            images += len(claimed)
        if batches:
            enqueue(job_id, batches)
            jobs += 1
            images += len(left)
    return Redelivered(jobs=jobs, images=images, purged=purged)


def unfinished_below_next(job: Job) -> list[int]:
    """Return the job's images that were handed to a task and are not finished."""
    return [n for n in range(job.next_index) if job.images[n].state in ("queued", "running")]


def redelivery(left: list[int], window: int) -> list[range]:
    """Return up to window tasks, of about as many images each, that cover left.

    A task's range may span images that finished meanwhile: a task skips those.
    """
    count = min(window, len(left))
    parts = (left[k * len(left) // count : (k + 1) * len(left) // count] for k in range(count))
    return [range(part[0], part[-1] + 1) for part in parts]
