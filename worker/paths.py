"""The storage sandbox: every path a request names must stay inside the root.

Paths are checked on their real location, after normalisation and symlink
resolution, with ``os.path.commonpath`` (not a string prefix: ``/srv/in_private``
is not inside ``/srv/in``). The API checks them at submission and the worker
again before it reads or writes, so a symlink swapped in later cannot escape.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255


class UnsafePath(ValueError):
    """Raised when a path names something outside the storage root, or is malformed."""


def resolve_in_root(root: Path, path: str) -> Path:
    """Return the real absolute path of a request's path, which must lie inside root."""
    if not path:
        raise UnsafePath("is empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise UnsafePath("contains a control character")
    encoded = os.fsencode(path)
    if len(encoded) > MAX_PATH_BYTES:
        raise UnsafePath(f"is longer than {MAX_PATH_BYTES} bytes")
    if any(len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")):
        raise UnsafePath(f"has a name longer than {MAX_NAME_BYTES} bytes")
    real_root = os.path.realpath(root)
    real = os.path.realpath(os.path.join(real_root, path))
    if os.path.commonpath([real_root, real]) != real_root or real == real_root:
        raise UnsafePath("is outside the storage root")
    return Path(real)
