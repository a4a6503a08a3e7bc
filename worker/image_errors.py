"""What a job record writes as the error of an image that did not run to its end.

The reference transitions (``worker.jobs.Job``) write them; the Redis store's scripts
are handed them, so both back ends write the same words.
"""

from __future__ import annotations


def gave_up_message(max_attempts: int) -> str:
    """Return the error of an image whose worker died on every attempt."""
    return (
        f"gave up after {max_attempts} attempts: the worker processing this image "
        "stopped each time (killed, or out of memory)"
    )
