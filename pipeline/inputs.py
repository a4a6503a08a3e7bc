"""Open input files, and probe an image's size from its header alone.

Errors name files by base name only: callers may pass resolved server paths.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from pipeline.errors import ImageDecodeError
from pipeline.headers import read_header
from pipeline.limits import DEFAULT_LIMITS, Limits, check_input_bytes, check_pixels
from pipeline.operation import Size


def unreadable(name: str, error: OSError) -> ImageDecodeError:
    """Return the error for a file that cannot be read, without the paths OSError may hold."""
    return ImageDecodeError(f"{name} cannot be read: {error.strerror or type(error).__name__}")


def open_input_file(path: str | os.PathLike[str], limits: Limits) -> tuple[str, BinaryIO]:
    """Open a regular file within the byte limit for reading; return its name and the file.

    Anything else (a folder, a FIFO that would block, a device) is refused before opening.
    """
    name = os.path.basename(os.fspath(path))
    try:
        status = os.stat(path)
        if stat.S_ISDIR(status.st_mode):
            raise ImageDecodeError(f"{name} is a folder, not an image")
        if not stat.S_ISREG(status.st_mode):
            raise ImageDecodeError(f"{name} is not a regular file")
        check_input_bytes(name, status.st_size, limits)
        return name, open(path, "rb")
    except OSError as error:
        raise unreadable(name, error) from None


def probe_size(path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> Size:
    """Return an image's (width, height) after EXIF orientation, reading only its header.

    Reads a few small pieces of the file (a JPEG's segments up to its first scan, a PNG's
    chunk headers), never its pixels. Raises ImageDecodeError, UnsupportedFormat or
    LimitExceeded as decoding the file would.
    """
    name, file = open_input_file(path, limits)

    def read_at(offset: int, n: int) -> bytes:
        file.seek(offset)
        return file.read(n)

    with file:
        try:
            header = read_header(read_at, name)
        except OSError as error:
            raise unreadable(name, error) from None
    check_pixels(name, *header.size, limits)
    return header.size
