"""A worker started by ``imgserve up`` dies with it, however the parent died.

On Linux the kernel does it: ``PR_SET_PDEATHSIG`` asks for SIGKILL when the parent
exits (Celery's pool processes ask the same of the worker, so the whole tree goes).
Elsewhere the worker leads its own process group (``imgserve up`` starts it so) and a
thread kills that group once the parent is gone. Either way the check against the
parent's pid closes the race of a parent that died before the link was made.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from typing import Any

KERNEL_LINK = sys.platform.startswith("linux")
"""Whether the kernel can signal a process when its parent dies (prctl)."""
PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.5


def child_options() -> dict[str, Any]:
    """Return the Popen options of a child that is to call die_with_parent."""
    return {} if KERNEL_LINK else {"process_group": 0}


def die_with_parent(parent: int) -> None:
    """Make this process die with parent (elsewhere than Linux: with its process group)."""
    if KERNEL_LINK:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library is loaded already
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch, args=(parent,), name="parent-death", daemon=True).start()
    if os.getppid() != parent:  # the parent died before the link was made
        _kill_all()


def _watch(parent: int) -> None:
    """Kill this process's group once its parent is no longer parent."""
    while os.getppid() == parent:
        time.sleep(_POLL_SECONDS)
    _kill_all()


def _kill_all() -> None:
    """Kill this process, and the process group it leads where the kernel does not link."""
    if not KERNEL_LINK and os.getpgrp() == os.getpid():
        os.killpg(os.getpid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
