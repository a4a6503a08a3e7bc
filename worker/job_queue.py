"""Submitting jobs and enqueueing their images: one path for every broker.

The API hands a validated job to ``JobQueue.submit``: the job is stored (claiming its first
window of images), then one task per image is sent. Tasks go by name
(``imgserve.process_image``), so nothing here imports the task code, and the same calls serve
Redis and the embedded filesystem transport.

Errors::

    SubmitFailed   the job could not be stored and enqueued; may_exist: it might be stored
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as NoAnswerYet

from celery import Celery

from worker.celery_app import QUEUE, TASK_NAME, make_celery
from worker.jobs import Job
from worker.settings import Settings
from worker.store import JobStore, StoreTimedOut, StoreUnavailable

log = logging.getLogger(__name__)

WITHDRAW_WAIT = 0.5
"""Seconds a failed submission waits for its job's withdrawal to be confirmed. The store
answers within its 2 s timeout, so a frozen Redis still gets its 503 within 3 s; a withdrawal
not confirmed by then goes on in the background."""
WITHDRAW_PATIENCE = 300.0
"""Seconds a withdrawal is retried while the store does not answer, before it is given up."""


class SubmitFailed(Exception):
    """Raised when a job could not be stored and enqueued; may_exist says it might be stored."""

    def __init__(self, detail: str, *, may_exist: bool) -> None:
        super().__init__(detail)
        self.detail = detail
        self.may_exist = may_exist


class JobQueue:
    """Store new jobs and send their images' tasks to the broker the settings name.

    retry: let Celery retry a publish that fails (its default policy), as the workers want;
    the API sends once and answers 503 instead, so that its answer comes within its bound.
    """

    def __init__(self, celery: Celery, store: JobStore, *, window: int, retry: bool) -> None:
        self.celery = celery
        self.store = store
        self.window = window
        self.retry = retry
        self._withdrawals = Withdrawals(lambda job_id: self.store.cancel(job_id))

    @classmethod
    def from_settings(cls, settings: Settings, store: JobStore, *, retry: bool) -> JobQueue:
        """Return the queue on the broker these settings name, over store."""
        return cls(make_celery(settings), store, window=settings.job_window, retry=retry)

    def submit(self, job: Job) -> None:
        """Store a new job, then enqueue its first window of images, one task each.

        A job whose tasks cannot be sent is withdrawn (cancelled), so none of it runs; when
        that cannot be confirmed, SubmitFailed says the job may exist.
        """
        try:
            first = self.store.create(job, window=self.window)
        except StoreTimedOut as exc:  # the job may have been stored; none of its tasks was sent
            if self._withdrawn(job.id):
                detail = f"job {job.id} was withdrawn if it was stored, and none of it runs"
                raise SubmitFailed(
                    f"the job store did not answer in time; {detail}: {exc}", may_exist=False
                ) from None
            raise SubmitFailed(
                f"the job store did not answer in time, and withdrawing the job was not "
                f"confirmed: {exc}",
                may_exist=True,
            ) from None
        except StoreUnavailable as exc:
            raise SubmitFailed(
                f"the job store does not answer, nothing was stored or enqueued: {exc}",
                may_exist=False,
            ) from None
        try:
            self.enqueue(job.id, [range(n, n + 1) for n in first])
        except Exception as exc:  # whatever the broker raised, the job must not wait for tasks
            if self._withdrawn(job.id):
                raise SubmitFailed(
                    f"the queue does not answer, the job was withdrawn: {exc}", may_exist=False
                ) from None
            raise SubmitFailed(
                f"the queue does not answer, and withdrawing the job was not confirmed: {exc}",
                may_exist=True,
            ) from None

    def enqueue(self, job_id: str, batches: Iterable[range]) -> None:
        """Send one task per batch (a range of a job's image indices)."""
        publish(self.celery, job_id, batches, retry=self.retry)

    def depth(self) -> int:
        """Return the number of tasks waiting in the imgserve queue."""
        with self.celery.connection_for_read() as connection:
            # Not passive: Redis drops an empty list, and a passive declare of a queue with
            # no list raises; declaring it again is harmless and answers 0.
            _, count, _ = connection.default_channel.queue_declare(queue=QUEUE)
            return int(count)

    def ping(self) -> None:
        """Raise unless the broker accepts a connection (its socket timeouts bound the wait)."""
        with self.celery.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=2)

    def _withdrawn(self, job_id: str) -> bool:
        """Cancel a job that cannot run as submitted; return whether none of it will run.

        True when the job is not stored, or every image of it is cancelled; False when the
        store does not confirm that within WITHDRAW_WAIT (the withdrawal goes on), or a worker
        already started one of its images.
        """
        cancelling = self._withdrawals.submit(job_id)
        try:
            job = cancelling.result(timeout=WITHDRAW_WAIT)
        except (NoAnswerYet, StoreUnavailable):
            return False
        return job is None or all(image.state == "cancelled" for image in job.images)


Pending = tuple[str, float, Future[Job | None]]
"""A withdrawal to make: the job, when to give up on it (monotonic), and its outcome."""
LOST = "job %s may be stored with no task sent: it was not withdrawn"


class Withdrawals:
    """Cancel jobs that could not be enqueued, in turn on a thread of their own.

    A store that does not answer is asked again, with backoff, for up to WITHDRAW_PATIENCE
    seconds: a job whose create timed out on a frozen Redis is stored when Redis thaws, and
    must then be cancelled rather than left queued with none of its tasks sent.
    """

    def __init__(self, cancel: Callable[[str], Job | None]) -> None:
        self.cancel = cancel
        self._pending: queue.SimpleQueue[Pending] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, name="withdrawals", daemon=True)
        self._starting = threading.Lock()

    def submit(self, job_id: str) -> Future[Job | None]:
        """Withdraw a job; return the future of the cancelled job (None: it was not stored)."""
        done: Future[Job | None] = Future()
        self._pending.put((job_id, time.monotonic() + WITHDRAW_PATIENCE, done))
        with self._starting:
            if not self._worker.is_alive():
                self._worker.start()
        return done

    def _run(self) -> None:
        """Withdraw each job in turn, forever."""
        while True:
            job_id, give_up, done = self._pending.get()
            pause = 0.25
            while not done.done():
                try:
                    done.set_result(self.cancel(job_id))
                except StoreUnavailable as exc:
                    if time.monotonic() + pause < give_up:
                        time.sleep(pause)
                        pause = min(2 * pause, 5.0)
                        continue
                    log.error(LOST + " (%s)", job_id, exc)
                    done.set_exception(exc)
                except Exception as exc:
                    log.exception(LOST, job_id)
                    done.set_exception(exc)


def publish(app: Celery, job_id: str, batches: Iterable[range], *, retry: bool) -> None:
    """Send one task per batch through one producer.

    Two or more go in one round trip where the transport can (kombu's publish batch: one
    Redis pipeline; the filesystem transport writes one file a task). A single task is
    published on its own: a batch is sent only when it closes, outside Celery's retry.
    """
    tasks = list(batches)
    with (
        app.producer_or_acquire() as producer,
        producer.batch() if len(tasks) > 1 else contextlib.nullcontext(),
    ):
        for batch in tasks:
            args = (job_id, batch.start, len(batch))
            app.send_task(TASK_NAME, args=args, queue=QUEUE, producer=producer, retry=retry)
