"""What the job store raises::

StoreError
 ├── StoreUnavailable   the back end does not answer (transient: try again later)
 │    └── StoreTimedOut  it did not answer in time: the change may have been made
 └── OutputsBusy        a new job would write an output a queued or running job writes
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
