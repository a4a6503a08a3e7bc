"""The embedded default's state folder: one service runs its queue, and its disk has room.

One ``imgserve up`` (or one embedded ``imgserve worker``) runs a state folder's queue:
it holds an exclusive ``flock`` on ``service.lock`` in the folder, with its pid in the
file. The kernel releases the lock when the last process holding it is gone, however
they died; the worker started by ``imgserve up`` inherits the lock, so a new service
cannot start while any process of the old one is still running.

Errors::

    StateFolderBusy   another service runs this folder's queue
"""

from __future__ import annotations

import fcntl
import os
import tempfile
from pathlib import Path

LOCK_NAME = "service.lock"
MIN_FREE_BYTES = 1024 * 1024
"""Below this much free space the state folder counts as full: a job's records and
messages need a few KiB each, and SQLite grows its files in pages."""


class StateFolderBusy(Exception):
    """Raised when another imgserve already runs the state folder's queue."""


def lock_state_folder(folder: Path) -> int:
    """Take the folder's lock for this process (and the children it passes it to).

    Return the lock's file descriptor, which stays open as long as the lock is held.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StateFolderBusy(
            f"another imgserve (pid {holder}) is running on the state folder {folder}; "
            "stop it first, or give this one its own IMGSERVE_STATE_DIR"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:  # a full disk: the lock holds all the same, without its pid
        pass
    return fd


def holds_lock(fd: int, folder: Path) -> bool:
    """Return whether fd is the lock file of folder (an inherited lock, passed by number)."""
    try:
        held, found = os.fstat(fd), os.stat(folder / LOCK_NAME)
    except OSError:
        return False
    return (held.st_dev, held.st_ino) == (found.st_dev, found.st_ino)


def disk_problem(folder: Path) -> str | None:
    """Return why the state folder cannot take writes (full, read-only), or None if it can."""
    try:
        stats = os.statvfs(folder)
        free = stats.f_bavail * stats.f_frsize
        if free < MIN_FREE_BYTES:
            return f"the state folder's disk is full ({free // 1024} KiB free)"
        with tempfile.TemporaryFile(dir=folder, prefix=".probe-") as probe:
            probe.write(b"imgserve")
            probe.flush()
    except OSError as exc:
        return f"the state folder cannot be written ({exc.strerror or exc})"
    return None
