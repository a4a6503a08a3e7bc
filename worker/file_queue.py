"""kombu's filesystem transport, with messages that are written whole or not at all and
read without trusting them: the embedded default's queue.

kombu's own ``_put`` creates the message file under its final name, then writes it: a
consumer polling the folder can take the file before it is written, and a write that
fails (a full disk) leaves an empty message behind. Its ``_get`` decodes the file
after taking it, so one empty or damaged file raises out of the consumer and stops
the worker, at every start. kombu offers no hook for either: the envelope is decoded
inside ``_get``, before a message exists for ``Consumer.on_decode_error`` to see. So
this channel overrides those two methods, the ones every kombu virtual transport
implements, and nothing else:

- ``_put`` writes ``<name>.part`` and renames it into the queue, so a message file is
  complete or absent; a full disk is waited out for ``full_disk_wait`` seconds (a
  transport option: the worker sets it, the API keeps 0 and answers 503 at once);
- ``_get`` takes a message by renaming it to ``<name>.taken`` (one consumer wins),
  then decodes it; one it cannot read is moved to ``queue-damaged/`` beside the queue
  folder with one log line, and the next message is taken instead.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

DAMAGED = "queue-damaged"
"""The folder, beside the queue folder, that damaged messages are moved into."""
_FULL = (errno.ENOSPC, errno.EDQUOT)
_FIRST_DELAY = 0.05


class Channel(filesystem.Channel):
    """A filesystem channel whose messages are whole, and whose damaged ones are set aside."""

    # kombu's virtual channel calls the second argument message, its filesystem one payload.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        """Put a message on queue: written beside it, then renamed into it."""
        name = f"{time.monotonic_ns():020d}_{uuid.uuid4().hex}.{queue}.msg"
        target = Path(self.data_folder_out) / name
        data = dumps(payload).encode()  # type: ignore[no-untyped-call]
        patience = float(self.transport_options.get("full_disk_wait", 0))
        deadline, delay = time.monotonic() + patience, _FIRST_DELAY
        while True:
            try:
                write_whole(target, data)
                return
            except OSError as exc:
                if exc.errno not in _FULL or time.monotonic() + delay > deadline:
                    reason = exc.strerror or exc
                    raise ChannelError(f"cannot add a message to the queue: {reason}") from exc
                if delay == _FIRST_DELAY:
                    log.warning(
                        "the state folder is full: waiting up to %.0f s to enqueue", patience
                    )
                time.sleep(delay)
                delay = min(2 * delay, 1.0)

    def _get(self, queue: str, timeout: float | None = None) -> dict[str, Any]:
        """Take the oldest message of queue; set aside any that cannot be read."""
        folder = Path(self.data_folder_in)
        for name in sorted(os.listdir(folder)):
            if name.partition(".")[2] != f"{queue}.msg":
                continue
            taken = folder / f"{name}.taken"
            try:
                os.rename(folder / name, taken)
            except OSError:  # another consumer took it first
                continue
            try:
                payload = loads(taken.read_bytes())  # type: ignore[no-untyped-call]
                self.Message(payload, channel=self)  # type: ignore[no-untyped-call]
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
                set_aside(taken, name, exc)
                continue
            with contextlib.suppress(OSError):
                taken.unlink()
            return payload  # type: ignore[no-any-return]
        raise Empty()


class Transport(filesystem.Transport):
    """kombu's filesystem transport with imgserve's channel."""

    Channel = Channel


def write_whole(target: Path, data: bytes) -> None:
    """Write data to target through a temporary file beside it, so it is never partial."""
    part = target.with_name(f"{target.name}.part")
    try:
        with part.open("xb") as out:
            out.write(data)
        part.rename(target)
    except BaseException:
        with contextlib.suppress(OSError):
            part.unlink()
        raise


def set_aside(taken: Path, name: str, error: BaseException) -> None:
    """Move a message that cannot be read into the damaged folder, with one log line."""
    damaged = taken.parent.parent / DAMAGED
    size = taken.stat().st_size if taken.exists() else 0
    try:
        damaged.mkdir(exist_ok=True)
        taken.rename(damaged / name)
    except OSError as exc:
        log.error("a damaged queue message %s (%d bytes) could not be moved: %s", name, size, exc)
        return
    reason = "empty" if size == 0 else f"{type(error).__name__}: {error}"
    log.error(
        "moved a damaged queue message aside: %s/%s (%d bytes, %s)", DAMAGED, name, size, reason
    )


def clear(folder: Path) -> int:
    """Remove every message of the queue folder, with the leftovers of writes and takes."""
    removed = 0
    for entry in os.scandir(folder):
        if entry.is_file() and entry.name.endswith((".msg", ".msg.part", ".msg.taken")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed += entry.name.endswith(".msg")
    return removed
