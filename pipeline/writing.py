"""Write outputs atomically, and never over the input.

All of one call's outputs are encoded in memory before this module runs, so an encoding
failure writes nothing. Each output is then written to a temporary file in its destination
folder (".{name}.imgserve.tmp", created with O_EXCL and mode 0o666 so the umask applies as
for any new file: mkstemp would make it 0o600) and fsynced; only when all are written is
each moved into place with os.replace. If anything fails, the temporary files are removed
and so are the outputs this call already moved into place: no file is left under a final
name from a failed call. Folders made for the outputs stay. A process killed between the
two steps (SIGKILL, out of memory) cannot clean up; the next write of the same output, such
as the redelivered attempt, finds its temporary file and replaces it. The name is fixed
rather than random so that finding it costs one failed open, not a listing of the folder
(a glob per output made writing 1000 outputs into one folder quadratic). Two writers of
the same output at once are not supported: the service never runs an image twice at once.

Each file is fsynced before it is moved: measured here (ext4), 0.3 to 0.5 ms per output
(16 outputs of a seed photo: +5 to 7 ms on 17 to 26 ms; one 430 KB output: no difference),
more when the disk is busy. Without it a power cut soon after os.replace can leave an empty
file under the final name, the very failure atomic writes exist to prevent, while the job
store already says the job is done. The folder itself is not fsynced.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path

from pipeline.encoding import Encoded
from pipeline.errors import ImageWriteError


def refuse_overwriting_input(input_path: str | os.PathLike[str], outputs: Sequence[Path]) -> None:
    """Raise ImageWriteError if any output is the input file (by path, link or inode)."""
    source = Path(input_path).resolve()
    for output in outputs:
        same = output.resolve() == source
        if not same:
            try:
                same = os.path.samefile(output, input_path)
            except OSError:
                same = False
        if same:
            detail = f"{output.name} is the input image; an output may not overwrite it"
            raise ImageWriteError(detail)


def write_outputs(outputs: Sequence[tuple[Path, Encoded]]) -> None:
    """Write every output to a temporary file beside it, then move all of them into place."""
    temporaries: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    current = outputs[0][0] if outputs else Path()
    try:
        for current, data in outputs:
            temporaries.append((_write_temporary(current, data), current))
        for temporary, current in temporaries:
            os.replace(temporary, current)
            placed.append(current)
    except BaseException as error:
        for temporary, output in temporaries:
            _remove(output if output in placed else temporary)
        if isinstance(error, OSError):
            reason = error.strerror or type(error).__name__
            raise ImageWriteError(f"cannot write {current.name}: {reason}") from error
        raise


def _write_temporary(path: Path, data: Encoded) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(temporary, flags, 0o666)
    except FileExistsError:  # left by an earlier write of this output that was killed
        _remove(temporary)
        descriptor = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data.data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        _remove(temporary)
        raise
    return temporary


def temporary_name(path: Path) -> Path:
    """Return the temporary file an output is written to before it is moved into place."""
    return path.with_name(f".{path.name}.imgserve.tmp")


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):  # cleaning up must not hide the error that caused it
        path.unlink()
