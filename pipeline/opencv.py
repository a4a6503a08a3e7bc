"""Process-wide OpenCV settings for a worker."""

from __future__ import annotations

import cv2


def configure_opencv(threads: int = 1) -> None:
    """Set how many threads OpenCV uses in this process; call once as each worker starts.

    One thread suits workers, which run in parallel as processes: OpenCV's own threads would
    only compete with the other workers for the same cores.
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, not {threads!r}")
    cv2.setNumThreads(threads)
