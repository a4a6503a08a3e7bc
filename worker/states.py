"""The states of a job and of its images, and a worker's start decisions: one definition.

Every store, the API's models and the Lua scripts (as arguments) take these names from here.
"""

from __future__ import annotations

import enum


class JobState(enum.StrEnum):
    """Where a job stands; the stores' scripts get these names as arguments."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PARTIALLY_FAILED = "partially_failed"
    CANCELLED = "cancelled"


class ImageState(enum.StrEnum):
    """Where one image of a job stands."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Start(enum.StrEnum):
    """What a worker should do with an image it was handed: run it, or not."""

    RUN = "run"
    SKIP = "skip"
    GAVE_UP = "gave_up"


ACTIVE_JOB_STATES: frozenset[JobState] = frozenset({JobState.QUEUED, JobState.RUNNING})
"""A job in these states may still write its outputs: no other job may share one."""
FINAL_JOB_STATES: frozenset[JobState] = frozenset(JobState) - ACTIVE_JOB_STATES
FINAL_IMAGE_STATES = frozenset(ImageState) - {ImageState.QUEUED, ImageState.RUNNING}
