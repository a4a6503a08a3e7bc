"""What the job store raises::

StoreError
 ├── StoreUnavailable   the back end does not answer (transient: try again later)
 │    └── StoreTimedOut  it did not answer in time: the change may have been made
 ├── OutputsBusy        a new job would write an output a queued or running job writes
 ├── InputInUse         a new job would write over the input of a queued or running job
 └── TooManyActive      the new job's owner has as many queued or running jobs as it may
"""

from __future__ import annotations


class StoreError(Exception):
    """Raised when the job store cannot do what was asked."""


class StoreUnavailable(StoreError):
    """Raised when the job store's back end does not answer, or cannot write for now."""


class StoreTimedOut(StoreUnavailable):
    """Raised when the back end took too long to answer: the change may have been made."""


class OutputsBusy(StoreError):
    """Raised when a new job's output is an output of a job that is queued or running."""

    def __init__(self, index: int, output: str, other_job: str) -> None:
        self.index = index
        """The new job's image that would write the output."""
        self.output = output
        """The output's path, as the new job's record holds it."""
        self.other_job = other_job
        """The id of the queued or running job that writes it too."""
        super().__init__(
            f"image {index} would write {output!r}, which job {other_job} "
            "(queued or running) writes too"
        )


class InputInUse(StoreError):
    """Raised when a new job's output is the input of a job that is queued or running."""

    def __init__(self, index: int, output: str, other_job: str) -> None:
        self.index = index
        """The new job's image that would write the output."""
        self.output = output
        """The output's path, as the new job's record holds it."""
        self.other_job = other_job
        """The id of the queued or running job that reads it."""
        super().__init__(
            f"image {index} would write {output!r}, which job {other_job} (queued or running) reads"
        )


class TooManyActive(StoreError):
    """Raised when the new job's owner already has as many queued or running jobs as it may."""

    def __init__(self, owner: str, limit: int) -> None:
        self.owner = owner
        self.limit = limit
        super().__init__(f"key {owner!r} has {limit} queued or running jobs, as many as it may")
