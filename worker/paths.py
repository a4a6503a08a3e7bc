"""The storage sandbox: every path a request names must stay inside the root.

Paths are checked on their real location, after normalisation and symlink
resolution: it must start with the root's real path and a separator
(``/srv/in_private`` is not inside ``/srv/in``). The API checks them at submission
and the worker again before it reads or writes, so a symlink swapped in later
cannot escape: a folder's real path is kept only with its identity (device and
inode), which one ``stat`` of the kept path, following links, checks on every use.
An output (``OutputRoot``) also never lies in a hidden folder or file, never inside a
separate input root, and never replaces a file unless allowed.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from worker.settings import Settings

MAX_PATH_BYTES = 1024
MAX_NAME_BYTES = 255
_CONTROL = re.compile("[\x00-\x1f\x7f]")


class UnsafePath(ValueError):
    """Raised when a path names something outside the storage root, or is malformed."""


Identity = tuple[int, int]
"""A folder's device and inode numbers."""


class InRoot:
    """Resolves a job's paths inside one root, reading each folder's real path once.

    A job names hundreds of files in a handful of folders: a folder's real path is
    found once (an lstat per component below the root), then each file costs a stat
    of its folder (is it still the same one?) and an lstat of its own, and a full
    realpath only when the file itself is a symbolic link.
    """

    def __init__(self, root: Path) -> None:
        self.real_root = _real_root(root)
        self._inside = os.path.join(self.real_root, "")
        self._folders: dict[str, tuple[str, Identity]] = {}

    def resolve(self, path: str) -> Path:
        """Return the real absolute path of path, which must lie inside the root."""
        _check_syntax(path)
        folder, name = os.path.split(path)
        if name in ("", ".", ".."):
            real = os.path.realpath(os.path.join(self.real_root, path))
        else:
            real = os.path.join(self._real_folder(folder), name)
            if os.path.islink(real):
                real = os.path.realpath(real)
        if real == self.real_root or not real.startswith(self._inside):
            raise UnsafePath("is outside the storage root")
        return Path(real)

    def _real_folder(self, folder: str) -> str:
        """Return the real path of a folder named relative to the root (kept while unchanged).

        Only a folder named by its real path is kept (no link on the way, none of ``..``):
        a stat of that path follows any link swapped in since, so the identity changes.
        """
        kept = self._folders.get(folder)
        if kept is not None and _identity(kept[0]) == kept[1]:
            return kept[0]
        real = _real_below(self.real_root, folder)
        identity = _identity(real)
        if identity is not None and real == os.path.normpath(os.path.join(self.real_root, folder)):
            self._folders[folder] = real, identity
        else:
            self._folders.pop(folder, None)
        return real


def _identity(path: str) -> Identity | None:
    """Return the device and inode of the folder path leads to, or None if there is none."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


class OutputRoot(InRoot):
    """Resolves outputs: inside the output root, and never where imgserve must not write.

    input_root is given when inputs have a root of their own (read only): no output may
    lie inside it, whatever the roots' nesting or a symbolic link makes of the path.
    """

    def __init__(self, root: Path, *, input_root: Path | None = None) -> None:
        super().__init__(root)
        self._input = None if input_root is None else os.path.join(_real_root(input_root), "")

    def writable(self, path: str, *, overwrite: bool) -> Path:
        """Return the real path of an output imgserve may write, or raise UnsafePath."""
        real = self.resolve(path)
        below = os.path.relpath(real, self.real_root)
        if any(part.startswith(".") for part in below.split(os.sep)):
            raise UnsafePath("is in a hidden folder or file (a name starting with '.')")
        if self._input is not None and os.path.join(str(real), "").startswith(self._input):
            raise UnsafePath("is inside the input root, which imgserve only reads")
        if not overwrite and os.path.lexists(real):
            raise UnsafePath(
                "already exists, and the job does not replace files (overwrite: false)"
            )
        return real


def output_root(settings: Settings) -> OutputRoot:
    """Return the output root the settings name, guarding a separate input root."""
    separate = settings.input_root if settings.separate_roots else None
    return OutputRoot(settings.outputs, input_root=separate)


def output_path(settings: Settings, path: str, *, overwrite: bool) -> Path:
    """Return the real path of an output the worker may write now, or raise UnsafePath.

    The worker calls it for each output just before writing: what the API checked at
    submission may have changed since (a symlink, a file that appeared).
    """
    return output_root(settings).writable(path, overwrite=overwrite)


def _real_below(real_root: str, relative: str) -> str:
    """Return ``realpath(join(real_root, relative))``, reading only what lies below the root.

    The root's path is real already, so only the names below it can be symbolic links:
    each costs one lstat (realpath walks every component from ``/``). A link, ``..`` or an
    absolute path is left to realpath.
    """
    path = real_root
    if os.path.isabs(relative):
        return os.path.realpath(relative)
    for name in relative.split(os.sep):
        if name in ("", "."):
            continue
        path = os.path.join(path, name)
        if name == ".." or os.path.islink(path):
            return os.path.realpath(os.path.join(real_root, relative))
    return path


@functools.lru_cache(maxsize=8)
def _real_root(root: Path) -> str:
    """Return a storage root's real path: configuration, read once per process.

    Everything below the root is resolved afresh for every path.
    """
    return os.path.realpath(root)


def _check_syntax(path: str) -> None:
    """Raise UnsafePath for an empty or malformed path."""
    if not path:
        raise UnsafePath("is empty")
    if _CONTROL.search(path):
        raise UnsafePath("contains a control character")
    encoded = os.fsencode(path)
    if len(encoded) > MAX_PATH_BYTES:
        raise UnsafePath(f"is longer than {MAX_PATH_BYTES} bytes")
    if len(encoded) > MAX_NAME_BYTES and any(
        len(part) > MAX_NAME_BYTES for part in encoded.split(b"/")
    ):
        raise UnsafePath(f"has a name longer than {MAX_NAME_BYTES} bytes")
