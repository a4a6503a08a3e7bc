"""Write outputs atomically, and never over the input.

Outputs arrive one at a time, each encoded just before it is written, so a call holds one
encoded output at a time. Each is written to a temporary file in its destination folder
(".{name}.{random}.tmp", created with O_EXCL and mode 0o666 so the umask applies as for any
new file: mkstemp would make it 0o600); once all are written each is fsynced, then each is
moved into place with os.replace. Two writers of one output never share a temporary file, so
neither can move the other's unfinished file into place. If anything fails, whether making,
encoding or writing output k of n, the temporary files written so far are removed and so
are the outputs this call already moved into place: no file is left under a final name, nor
a temporary file, from a failed call. Folders made for the outputs stay. A process
killed before it has moved every output into place (SIGKILL, out of memory) cannot clean up;
the write that redoes it (``retry``: the worker's next attempt of the image) removes the
temporary files it left and replaces the outputs it moved. Only a retry lists the folder: a
glob per output on every write made writing n files into one folder O(n) an output.

Each file is fsynced before it is moved: measured here (ext4), 0.3 to 0.5 ms per output
(16 outputs of a seed photo: +5 to 7 ms on 17 to 26 ms; one 430 KB output: no difference),
more when the disk is busy. Without it a power cut soon after os.replace can leave an empty
file under the final name, the very failure atomic writes exist to prevent, while the job
store already says the job is done. The folder itself is not fsynced. The fsyncs wait until
every output is written, each on the file reopened: an fsync puts the process to sleep until
the disk has the data, and one between two outputs made each next output start on cold
caches, which slowed chains of many small outputs.
"""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path

from pipeline.encoding import Encoded
from pipeline.errors import ImageWriteError


def refuse_overwriting_input(input_path: str | os.PathLike[str], outputs: Sequence[Path]) -> None:
    """Raise ImageWriteError if any output is the input file (by path, link or inode).

    A path, a symbolic link or a hard link to the input all lead to its inode: one stat of
    the input and one of each output. An output that does not exist yet is not the input,
    unless its path climbs out of a folder that writing it would create (``new/../in.png``).
    """
    try:
        source = os.stat(input_path)
    except OSError:
        return  # no input to overwrite: reading it fails with its own message
    for output in outputs:
        try:
            target = os.stat(output)
            same = (target.st_ino, target.st_dev) == (source.st_ino, source.st_dev)
        except OSError:
            same = ".." in output.parts and output.resolve() == Path(input_path).resolve()
        if same:
            detail = f"{output.name} is the input image; an output may not overwrite it"
            raise ImageWriteError(detail)


def write_outputs(outputs: Iterable[tuple[Path, Encoded]], *, retry: bool = False) -> None:
    """Write each output to a temporary file beside it as it comes, then move all into place.

    The iterable may make each output as it is asked for: none is asked for before the one
    before it is written and let go. retry: this write redoes one that may have been
    killed; remove the temporary files that one left beside each output first.
    """
    temporaries: list[tuple[Path, Path]] = []
    placed = 0
    try:
        for path, data in outputs:
            temporaries.append((_write_temporary(path, data, retry=retry), path))
            del data  # let this output's bytes go before the next one is made
        for temporary, path in temporaries:
            _sync(temporary, path)
        for temporary, path in temporaries:
            try:
                os.replace(temporary, path)
            except OSError as error:
                raise _cannot_write(path, error) from error
            placed += 1
    except BaseException:
        for n, (temporary, path) in enumerate(temporaries):
            _remove(path if n < placed else temporary)
        raise


def _write_temporary(path: Path, data: Encoded, *, retry: bool) -> Path:
    """Write an output to a new temporary file beside it; return the file's path."""
    try:
        if retry:
            _remove_leftovers(path)
        _make_folder(path)
        temporary, descriptor = _create_temporary(path)
    except OSError as error:
        raise _cannot_write(path, error) from error
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data.data)
    except BaseException as error:
        _remove(temporary)
        if isinstance(error, OSError):
            raise _cannot_write(path, error) from error
        raise
    return temporary


def _sync(temporary: Path, path: Path) -> None:
    """Wait until the disk has a temporary file's data; a new descriptor gets any error too."""
    try:
        descriptor = os.open(temporary, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as error:
        raise _cannot_write(path, error) from error


def _make_folder(path: Path) -> None:
    """Make the folders an output goes in; name a part of its path that is a file, if one is."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        # Neither names the part of the path that is in the way: find it.
        for folder in reversed(path.parents):
            if folder.exists() and not folder.is_dir():
                detail = (
                    f"cannot write {path.name}: {folder.name} in its path is a file, not a folder"
                )
                raise ImageWriteError(detail) from error
        raise


def _create_temporary(path: Path) -> tuple[Path, int]:
    """Create a temporary file of a random name beside path; return it and its descriptor."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            return temporary, os.open(temporary, flags, 0o666)
        except FileExistsError:
            continue


def _cannot_write(path: Path, error: OSError) -> ImageWriteError:
    """Return the error that says why an output could not be written."""
    return ImageWriteError(f"cannot write {path.name}: {error.strerror or type(error).__name__}")


def _remove_leftovers(path: Path) -> None:
    """Remove the temporary files an earlier, killed write of this output left behind."""
    pattern = f".{glob.escape(path.name)}.{'[0-9a-f]' * 8}.tmp"
    for leftover in path.parent.glob(pattern):
        _remove(leftover)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # cleaning up must not hide the error that caused it
        path.unlink()
