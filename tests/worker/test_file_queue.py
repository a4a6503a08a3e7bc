"""The embedded queue: messages whole or absent, damaged ones set aside, a full disk waited out."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Queue
from kombu.exceptions import ChannelError

from tests.support import fill, small_tmpfs
from worker import file_queue

QUEUE = Queue("imgserve", routing_key="imgserve")


def connect(folder: Path, **options: Any) -> Connection:
    """Return a connection to a filesystem queue in folder, through imgserve's transport."""
    (folder / "queue").mkdir(parents=True, exist_ok=True)
    (folder / "control").mkdir(exist_ok=True)
    return Connection(
        "filesystem://",
        transport="worker.file_queue:Transport",
        transport_options={
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "control_folder": str(folder / "control"),
            **options,
        },
    )


def publish(connection: Connection, body: dict[str, Any]) -> None:
    """Publish body on the imgserve queue."""
    with connection.Producer() as producer:
        producer.publish(body, routing_key="imgserve", declare=[QUEUE], serializer="json")


def take(connection: Connection) -> Any:
    """Return the body of the next message of the imgserve queue, acked."""
    with connection.SimpleQueue(QUEUE) as simple:
        message = simple.get(timeout=2)
        message.ack()
        return message.payload


@pytest.fixture
def full(tmp_path: Path) -> Iterator[Path]:
    """Yield a folder on a small tmpfs that is full to the last byte."""
    with small_tmpfs(tmp_path / "small", 256) as folder:
        with connect(folder) as connection:
            publish(connection, {"declare": "the queue"})
            take(connection)
        fill(folder)
        yield folder


def test_a_message_is_one_whole_file_in_the_queue_until_taken(tmp_path: Path) -> None:
    with connect(tmp_path) as connection:
        publish(connection, {"job": "a", "index": 3})
        names = sorted(p.name for p in (tmp_path / "queue").iterdir())
        assert len(names) == 1 and names[0].endswith(".imgserve.msg")
        assert take(connection) == {"job": "a", "index": 3}
    assert list((tmp_path / "queue").iterdir()) == []


def test_empty_and_damaged_messages_are_moved_aside_and_the_next_one_is_delivered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    damaged = {"0_empty": b"", "1_truncated": b'{"body": "e', "2_list": b"[]"}
    names = [f"{'0' * 19}{name}.imgserve.msg" for name in damaged]  # before any real one
    with connect(tmp_path) as connection:
        publish(connection, {"job": "a"})
        for name, data in zip(names, damaged.values(), strict=True):
            (tmp_path / "queue" / name).write_bytes(data)
        with caplog.at_level(logging.ERROR, logger="worker.file_queue"):
            assert take(connection) == {"job": "a"}
    assert sorted(p.name for p in (tmp_path / "queue-damaged").iterdir()) == names
    moved = "moved a damaged queue message aside: queue-damaged/"
    assert caplog.messages == [
        f"{moved}{names[0]} (0 bytes, empty)",
        f"{moved}{names[1]} (11 bytes, JSONDecodeError: Unterminated string starting at: "
        "line 1 column 10 (char 9))",
        f"{moved}{names[2]} (2 bytes, TypeError: list indices must be integers or slices, not str)",
    ]
    assert list((tmp_path / "queue").iterdir()) == []


def test_a_publish_to_a_full_disk_fails_and_leaves_no_file(full: Path) -> None:
    with connect(full) as connection, pytest.raises(ChannelError) as raised:
        publish(connection, {"job": "a"})
    assert str(raised.value) == "cannot add a message to the queue: No space left on device"
    assert list((full / "queue").iterdir()) == []


def test_a_publish_told_to_wait_out_a_full_disk_is_written_once_space_returns(
    full: Path,
) -> None:
    freed = threading.Timer(0.5, (full / "filler").unlink)
    freed.start()
    started = time.monotonic()
    with connect(full, full_disk_wait=10) as connection:
        publish(connection, {"job": "a"})
        waited = time.monotonic() - started
        assert [p.name.endswith(".imgserve.msg") for p in (full / "queue").iterdir()] == [True]
        assert take(connection) == {"job": "a"}
    freed.join()
    assert 0.5 <= waited < 5


def test_clear_removes_messages_and_what_killed_writes_and_takes_left(tmp_path: Path) -> None:
    queue = tmp_path / "queue"
    queue.mkdir()
    for name in ("1_a.imgserve.msg", "2_b.imgserve.msg", "3_c.imgserve.msg.part",
                 "4_d.imgserve.msg.taken", "notes.txt"):  # fmt: skip
        (queue / name).write_text("{}")
    assert file_queue.clear(queue) == 2
    assert [p.name for p in queue.iterdir()] == ["notes.txt"]
