"""imgserve's Redis transport: a message taken while Redis refuses writes is still delivered."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from kombu import Connection

from worker.celery_app import OWN_TRANSPORT

QUEUE = "transport-test"


@pytest.fixture
def admin(redis_url: str) -> Iterator[redis.Redis]:
    """Yield a client of the test Redis, which is given its room back at the end."""
    client = redis.Redis.from_url(redis_url)
    try:
        yield client
    finally:
        client.config_set("maxmemory", 0)
        client.close()


@pytest.mark.parametrize("transport", [OWN_TRANSPORT, "redis"])
def test_a_message_taken_while_redis_is_full(
    admin: redis.Redis, redis_url: str, transport: str
) -> None:
    with Connection(redis_url, transport=transport) as connection:
        queue = connection.SimpleQueue(QUEUE)
        queue.put({"images": [0]})
        queue.consumer.consume()  # declared and consuming: what a worker is
        admin.config_set("maxmemory", 1)  # every write refused: "OOM command not allowed"
        if transport == "redis":  # kombu's own: the record is refused, the message is gone
            with pytest.raises(redis.OutOfMemoryError):
                queue.get(timeout=5)
            assert (admin.llen(QUEUE), admin.hlen("unacked")) == (0, 0)
            return
        message = queue.get(timeout=5)
        assert message.payload == {"images": [0]}
        assert admin.hlen("unacked") == 0  # not recorded: Redis refused it
        admin.config_set("maxmemory", 0)
        message.ack()
        assert (admin.llen(QUEUE), admin.hlen("unacked")) == (0, 0)


@pytest.mark.parametrize("transport", [OWN_TRANSPORT, "redis"])
def test_an_ack_while_redis_is_full(admin: redis.Redis, redis_url: str, transport: str) -> None:
    with Connection(redis_url, transport=transport) as connection:
        queue = connection.SimpleQueue(QUEUE)
        queue.put({"images": [0]})
        queue.put({"images": [1]})
        first = queue.get(timeout=5)
        assert admin.hlen("unacked") == 1
        admin.config_set("maxmemory", 1)
        if transport == "redis":  # kombu's own: the consumer gets the refusal
            with pytest.raises(redis.OutOfMemoryError):
                first.ack()
            return
        first.ack()  # done; its record is kept while Redis refuses to drop it
        admin.config_set("maxmemory", 0)
        assert admin.hlen("unacked") == 1
        second = queue.get(timeout=5)
        assert second.payload == {"images": [1]}
        second.ack()  # drops both records
        assert (admin.llen(QUEUE), admin.hlen("unacked")) == (0, 0)


def test_a_requeue_while_redis_is_full_leaves_the_record_for_later(
    admin: redis.Redis, redis_url: str
) -> None:
    with Connection(redis_url, transport=OWN_TRANSPORT) as connection:
        queue = connection.SimpleQueue(QUEUE)
        queue.put({"images": [0]})
        message = queue.get(timeout=5)
        admin.config_set("maxmemory", 1)
        message.requeue()  # refused: no error reaches the consumer
        admin.config_set("maxmemory", 0)
        assert message.acknowledged
        assert (admin.llen(QUEUE), admin.hlen("unacked")) == (0, 1)
