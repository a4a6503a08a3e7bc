"""The Redis broker transport: kombu's, with one client a channel instead of one a command,
and messages held back for the job store to push with their job."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import redis
from celery import Celery
from kombu.messaging import Producer
from redis.connection import AbstractConnection

from worker.broker import Channel
from worker.celery_app import QUEUE, make_celery
from worker.dispatch import enqueue_images, task_messages
from worker.settings import Settings


def broker(redis_url: str, tmp_path: Path) -> Celery:
    """Return imgserve's Celery app on the test Redis."""
    return make_celery(Settings(redis_url=redis_url, root=tmp_path, state_dir=tmp_path))


def queued(redis_url: str) -> list[tuple[str, int, int]]:
    """Return the (job, index, count) of every task in imgserve's queue, oldest first."""
    client = redis.Redis.from_url(redis_url)
    messages = [json.loads(raw) for raw in reversed(client.lrange(QUEUE, 0, -1))]
    client.close()
    return [(m["headers"]["task"], *json.loads(_body(m))[0]) for m in messages]


def _body(message: dict[str, object]) -> bytes:
    """Return a kombu Redis message's body, base64 as kombu sends it."""
    return base64.b64decode(str(message["body"]))


def test_publishes_share_one_client_and_every_message_arrives(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = broker(redis_url, tmp_path)
    made: list[object] = []
    original = Channel._create_client

    def counting(self: Channel, asynchronous: bool = False) -> object:
        client = original(self, asynchronous)
        if not asynchronous:  # the event loop's own client is made once anyway
            made.append(client)
        return client

    monkeypatch.setattr(Channel, "_create_client", counting)
    for n in range(20):
        enqueue_images(app, f"job{n}", [range(n, n + 2)])
    assert queued(redis_url) == [("imgserve.process_image", f"job{n}", n, 2) for n in range(20)]
    # kombu's own channel makes a client for each of the 20; this one at most one (none if
    # an earlier test's app on the same Redis left a channel in kombu's shared pools).
    assert len(made) <= 1


def test_a_channel_whose_pool_was_replaced_publishes_on_the_new_one(
    redis_url: str, tmp_path: Path
) -> None:
    app = broker(redis_url, tmp_path)
    with app.producer_or_acquire() as producer:
        channel = producer.channel
        assert isinstance(channel, Channel)
        app.send_task("imgserve.process_image", args=("a", 0, 1), producer=producer)
        first = channel._own_client
        channel._disconnect_pools()  # what kombu does after a fork or a lost connection
        app.send_task("imgserve.process_image", args=("b", 0, 1), producer=producer)
        assert first is not None and channel._own_client is not first
        assert channel._own_client.connection_pool is channel.pool
    assert [job for _, job, _, _ in queued(redis_url)] == ["a", "b"]


def test_a_window_of_tasks_is_enqueued_in_one_round_trip(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = broker(redis_url, tmp_path)
    enqueue_images(app, "warm-up", [range(0, 1)])
    sends = count_sends(monkeypatch)
    enqueue_images(app, "job", [range(n, n + 1) for n in range(8)])
    assert len(sends) == 1  # kombu's publish batch: one pipeline
    assert queued(redis_url)[1:] == [("imgserve.process_image", "job", n, 1) for n in range(8)]


def test_a_transport_that_cannot_hold_messages_is_refused(redis_url: str, tmp_path: Path) -> None:
    app = broker(redis_url, tmp_path)
    app.conf.broker_transport = None  # kombu's own, as for rediss://
    with pytest.raises(RuntimeError) as raised:
        task_messages(app, "job", [range(0, 1)])
    assert str(raised.value).startswith("the broker's transport cannot hold messages: ")
    assert queued(redis_url) == []  # refused before anything was sent


def test_a_single_task_is_published_on_its_own_within_celerys_retry(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = broker(redis_url, tmp_path)
    monkeypatch.setattr(Producer, "batch", lambda *_, **__: pytest.fail("batched"))
    enqueue_images(app, "job", [range(4, 7)])
    assert queued(redis_url) == [("imgserve.process_image", "job", 4, 3)]


def count_sends(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record every write of commands to Redis from now on (a pipeline is one)."""
    sends: list[int] = []
    original = AbstractConnection.send_packed_command

    def counting(self: AbstractConnection, command: object, check_health: bool = True) -> None:
        sends.append(1)
        original(self, command, check_health)  # type: ignore[arg-type]

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return sends
