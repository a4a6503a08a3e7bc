"""The job record: what a job asked for and where each of its images stands.

The record is the service's own (never Celery's result backend): the API answers
``GET /jobs/<id>`` from it alone, and the workers move its images through

    queued -> running -> succeeded | failed      (or queued/running -> cancelled)

and back from running to queued when the worker running an image is gone (see
``worker.liveness``). A job is ``queued`` until its first image starts, ``running``
until every image has settled, then ``succeeded``, ``failed`` (every image failed)
or ``partially_failed``; ``cancelled`` is set at once by a cancel.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from worker.image_errors import gave_up_message
from worker.liveness import Holder
from worker.states import (
    ACTIVE_JOB_STATES,
    FINAL_IMAGE_STATES,
    FINAL_JOB_STATES,
    ImageState,
    JobState,
    Start,
)

# fmt: off
__all__ = ["ACTIVE_JOB_STATES", "FINAL_IMAGE_STATES", "FINAL_JOB_STATES", "ImageRecord",
           "ImageState", "Job", "JobState", "Lost", "Start", "iso", "new_job_id"]
# fmt: on


def new_job_id() -> str:
    """Return a fresh, unguessable job id."""
    return uuid.uuid4().hex


def iso(timestamp: float | None) -> str | None:
    """Format a Unix time as ISO 8601 UTC, or None."""
    if timestamp is None:
        return None
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class ImageRecord:
    """One image of a job: its paths as the request wrote them, its state and outputs."""

    input: str
    output: str
    outputs: list[str]
    state: ImageState = ImageState.QUEUED
    error: str | None = None
    attempts: int = 0
    started: float | None = None
    holder: Holder | None = None  # who runs it (worker.liveness), only while it runs

    def to_json(self) -> dict[str, Any]:
        """Return the image as the API shows it (outputs only once written)."""
        return {
            "input": self.input,
            "output": self.output,
            "state": self.state,
            "outputs": self.outputs if self.state == ImageState.SUCCEEDED else [],
            "error": self.error,
        }


Lost = Callable[[ImageRecord], bool]
"""Whether a running image's holder is gone (see worker.liveness.Liveness)."""


@dataclass
class Job:
    """A job: its normalized request, its images and its progress counters."""

    id: str
    operations: list[dict[str, Any]]
    encode: dict[str, Any]
    images: list[ImageRecord]
    created_at: float
    state: JobState = JobState.QUEUED
    started_at: float | None = None
    finished_at: float | None = None
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    running: int = 0
    next_index: int = 0
    version: int = 0
    changed_at: float | None = None
    claims: dict[int, range] = field(default_factory=dict)
    """The images each claim took, by its key (Move.claim_key)."""
    owner: str | None = None
    """The name of the API key that submitted the job (None: anonymous)."""
    overwrite: bool = True
    """Whether the job's outputs may replace existing files (the worker checks again)."""

    @property
    def total(self) -> int:
        """Return the number of images in the job."""
        return len(self.images)

    @property
    def finished(self) -> bool:
        """Return whether the job has reached a final state and nothing runs any more."""
        return self.state in FINAL_JOB_STATES and self.finished_at is not None

    def spec(self) -> dict[str, Any]:
        """Return the immutable part of the job, as the stores keep it."""
        return {
            "id": self.id,
            "operations": self.operations,
            "encode": self.encode,
            "created_at": self.created_at,
            "owner": self.owner,
            "overwrite": self.overwrite,
            "images": [
                {"input": i.input, "output": i.output, "outputs": i.outputs} for i in self.images
            ],
        }

    def to_json(self) -> dict[str, Any]:
        """Return the job resource as ``GET /jobs/<id>`` answers it."""
        settled = self.done + self.failed + self.cancelled
        return {
            "id": self.id,
            "state": self.state,
            "progress": {
                "total": self.total,
                "done": self.done,
                "failed": self.failed,
                "cancelled": self.cancelled,
                "percent": round(100.0 * settled / self.total, 1) if self.total else 100.0,
            },
            "operations": self.operations,
            "encode": self.encode,
            "images": [image.to_json() for image in self.images],
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Job:
        """Rebuild a job in its initial state from what ``spec`` returned."""
        return cls(
            id=spec["id"],
            operations=spec["operations"],
            encode=spec["encode"],
            created_at=spec["created_at"],
            owner=spec.get("owner"),
            overwrite=spec.get("overwrite", True),
            images=[
                ImageRecord(i["input"], i["output"], list(i["outputs"])) for i in spec["images"]
            ],
        )

    # The transitions below are the reference semantics of the job record. The SQLite
    # store applies them inside one transaction; the Redis store's Lua scripts mirror
    # them, and tests/worker/test_store_model.py holds every store to them.

    def first_window(self, window: int) -> list[int]:
        """Return the images of the job's first tasks, one image each: up to window of them."""
        return list(range(min(window, self.total)))

    def claim_next(self, *, count: int = 1, window: int = 1, key: int | None = None) -> range:
        """Take the next images to enqueue as one task: up to count of them (at least one).

        A task never takes more than 1/window of the images left, so the tasks of a
        job's window share its tail. Empty when none is left. A claim made again with
        its key takes nothing new and answers what it took the first time.
        """
        if key is not None and key in self.claims:
            return self.claims[key]
        if self.state in FINAL_JOB_STATES or self.next_index >= self.total:
            return range(0)
        left = self.total - self.next_index
        taken = max(1, min(count, -(-left // window)))
        self.next_index += taken
        claimed = range(self.next_index - taken, self.next_index)
        if key is not None:
            self.claims[key] = claimed
        return claimed

    def start_image(
        self, index: int, *, max_attempts: int, now: float, holder: Holder | None, lost: Lost
    ) -> Start:
        """Mark an image running under holder and count the attempt, unless it must not run.

        An image running under a live holder is not started again (a duplicate delivery),
        unless by that holder (a repeat: it runs on); one whose holder is gone (lost) is.
        """
        image = self.images[index]
        if image.state in FINAL_IMAGE_STATES:
            return Start.SKIP
        if image.state == ImageState.RUNNING:
            if holder is not None and image.holder == holder:
                return Start.RUN
            if not lost(image):
                return Start.SKIP
            self.running -= 1
            image.holder = None
        if self.state == JobState.CANCELLED:
            self._settle_image(image, ImageState.CANCELLED, None, now)
            return Start.SKIP
        image.attempts += 1
        if image.attempts > max_attempts:
            self._settle_image(image, ImageState.FAILED, gave_up_message(max_attempts), now)
            return Start.GAVE_UP
        image.state, image.started, image.holder = ImageState.RUNNING, now, holder
        self.running += 1
        if self.state == JobState.QUEUED:
            self.state, self.started_at = JobState.RUNNING, now
        self._bump(now)
        return Start.RUN

    def finish_image(self, index: int, *, error: str | None, now: float) -> bool:
        """Settle a running image as succeeded or failed; False if it was not running."""
        image = self.images[index]
        if image.state != ImageState.RUNNING:
            return False
        self.running -= 1
        self._settle_image(image, ImageState.FAILED if error else ImageState.SUCCEEDED, error, now)
        return True

    def cancel(self, now: float) -> None:
        """Cancel every image that has not started; running ones finish."""
        if self.state in FINAL_JOB_STATES:
            return
        for image in self.images:
            if image.state == ImageState.QUEUED:
                image.state = ImageState.CANCELLED
                self.cancelled += 1
        self.state = JobState.CANCELLED
        self._settle(now)
        self._bump(now)

    def redeliver_lost(self, lost: Lost, now: float) -> list[range]:
        """Put the running images whose holder is gone back in the queue; return their tasks.

        A lost image's task runs from it to its holder's ``until``: nothing else would run
        the images after it. A cancelled job's lost images are cancelled instead.
        """
        tasks = []
        for index, image in enumerate(self.images):
            if image.state != ImageState.RUNNING or not lost(image):
                continue
            self.running -= 1
            until = index + 1 if image.holder is None else max(index + 1, image.holder.until)
            if self.state == JobState.CANCELLED:
                self._settle_image(image, ImageState.CANCELLED, None, now)
                continue
            image.state, image.holder = ImageState.QUEUED, None
            self._bump(now)
            tasks.append(range(index, min(until, self.total)))
        return tasks

    def _settle_image(
        self, image: ImageRecord, state: ImageState, error: str | None, now: float
    ) -> None:
        """Put an image in a final state, count it, and settle the job if it was the last."""
        image.state, image.error, image.holder = state, error, None
        if state == ImageState.SUCCEEDED:
            self.done += 1
        elif state == ImageState.FAILED:
            self.failed += 1
        else:
            self.cancelled += 1
        self._settle(now)
        self._bump(now)

    def _bump(self, now: float) -> None:
        """Count a change: long-polls wake on the version."""
        self.version += 1
        self.changed_at = now

    def _settle(self, now: float) -> None:
        """Give the job its final state once nothing is left to run."""
        if self.state == JobState.CANCELLED:
            if self.running == 0 and self.finished_at is None:
                self.finished_at = now
        elif self.done + self.failed + self.cancelled >= self.total:
            partly = JobState.PARTIALLY_FAILED if self.failed else JobState.SUCCEEDED
            self.state = JobState.FAILED if self.failed == self.total else partly
            self.finished_at = now
