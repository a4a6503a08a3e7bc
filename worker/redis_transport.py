"""kombu's Redis transport, with deliveries that survive a Redis that refuses writes.

kombu takes a message off its queue (BRPOP, which a full Redis still allows), then
records it as delivered and not yet acknowledged (ZADD and HSET in a MULTI; at
``maxmemory`` with ``noeviction``, or as a read-only replica, Redis refuses those, and
every command inside a MULTI). kombu raises that refusal in the worker's consumer with
the message in no list at all: it is lost, and its images wait for nothing. Its ack
(ZREM and HDEL in a MULTI) is refused too, which restarts the consumer and leaves the
record to be handed out again an hour later.

This transport's QoS delivers a message whose record is refused anyway, unrecorded: its
task runs and waits the outage out (worker/outages.py); only a worker that dies before
its ack loses it, as kombu's own transport always did. An ack whose record Redis will
not drop is done in memory, and the record dropped after the next ack Redis takes; a
rejection Redis refuses leaves the record, handed out again after the visibility timeout.

Celery uses it through ``broker_transport`` (worker/celery_app.py) for ``redis://``
URLs (``rediss://`` and ``sentinel://`` keep kombu's own, which their schemes select);
it only replaces the channel's QoS class.
"""

from __future__ import annotations

import logging
from typing import Any

import redis
from kombu.transport import redis as kombu_redis
from kombu.transport import virtual
from kombu.transport.redis import QoS as KombuQoS

log = logging.getLogger(__name__)


REFUSED = (redis.OutOfMemoryError, redis.ReadOnlyError)
"""Redis's replies to a write it refuses for now: full (noeviction), or a read-only replica."""


class QoS(KombuQoS):
    """kombu's Redis QoS, which delivers and acknowledges while Redis refuses writes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._records_left: list[Any] = []  # delivery tags acked whose records Redis kept

    def append(self, message: Any, delivery_tag: Any) -> None:
        """Record a delivery as unacknowledged; keep it in memory only if Redis refuses."""
        try:
            super().append(message, delivery_tag)  # type: ignore[no-untyped-call]
        except REFUSED as exc:
            log.warning("Redis refused to record delivery %s (%s): delivered", delivery_tag, exc)
            virtual.QoS.append(self, message, delivery_tag)  # type: ignore[no-untyped-call]

    def ack(self, delivery_tag: Any) -> None:
        """Acknowledge a delivery; if Redis refuses to drop its record, drop it later."""
        try:
            super().ack(delivery_tag)  # type: ignore[no-untyped-call]
        except REFUSED as exc:
            log.warning("Redis refused to drop delivery %s (%s): dropped later", delivery_tag, exc)
            virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]
            self._records_left.append(delivery_tag)
            return
        while self._records_left:
            super().ack(self._records_left.pop())  # type: ignore[no-untyped-call]

    def reject(self, delivery_tag: Any, requeue: bool = False) -> None:
        """Reject a delivery; if Redis refuses, its record stays for the visibility timeout."""
        try:
            super().reject(delivery_tag, requeue=requeue)  # type: ignore[no-untyped-call]
        except REFUSED as exc:
            log.warning("Redis refused to requeue delivery %s (%s): kept", delivery_tag, exc)
            virtual.QoS.ack(self, delivery_tag)  # type: ignore[no-untyped-call]


class Channel(kombu_redis.Channel):
    """kombu's Redis channel with the QoS above."""

    QoS = QoS


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the channel above."""

    Channel = Channel
