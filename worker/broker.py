"""kombu's Redis transport, with one client for a channel's own commands, and messages
that can be held back to be pushed by someone else.

kombu builds a new ``redis.Redis`` for every command it sends outside its event
loop (``Channel.conn_or_acquire``): every publish, every queue length. Building one
copies redis-py's ~170 reply callbacks into a case-insensitive dict: 0.2 ms of CPU, as
much as the publish's round trip to Redis itself (benchmarks/RESULTS-service.md). A
``redis.Redis`` is safe to share between threads (each command takes a connection
from the pool), so a channel keeps one, made again whenever kombu replaces the
channel's connection pool (after a fork, after a connection error).

Inside ``holding()``, a publish is routed and serialised as usual but not sent: its
final Redis command (an LPUSH of the message onto its queue's list) is handed back as a
``Held`` message instead. The Redis job store pushes those in the same script that
stores their job, so a job and its first tasks reach Redis together, in one round trip.

Celery uses it through ``broker_transport`` (worker/celery_app.py) for ``redis://`` URLs;
``rediss://`` and ``sentinel://`` keep kombu's own transport, which their schemes select.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from kombu.transport import redis as kombu_redis
from kombu.utils.json import dumps


@dataclass(frozen=True)
class Held:
    """A message published inside holding(): push payload onto the Redis list key."""

    key: str
    payload: str


_held: ContextVar[list[Held] | None] = ContextVar("imgserve_held_messages", default=None)


@contextmanager
def holding() -> Iterator[list[Held]]:
    """Hold back the messages this thread publishes through Channel; yield them as a list."""
    held: list[Held] = []
    token = _held.set(held)
    try:
        yield held
    finally:
        _held.reset(token)


class Channel(kombu_redis.Channel):
    """A Redis channel that reuses one client for its synchronous commands."""

    _own_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        """Yield the client given, else this channel's own one (on its current pool)."""
        if client is not None:
            yield client
            return
        pool = self.pool
        own = self._own_client
        if own is None or own.connection_pool is not pool:
            own = self._own_client = self._create_client()  # type: ignore[no-untyped-call]
        yield own

    def _put(self, queue: str, message: dict[str, Any], **kwargs: Any) -> None:
        """Push a message onto its queue's list, or hold it back inside holding()."""
        held = _held.get()
        if held is None:
            super()._put(queue, message, **kwargs)  # type: ignore[no-untyped-call]
            return
        if self._expires and queue in self._expires:  # its lists' expiry would be lost
            raise ValueError(f"a message for queue {queue!r}, which expires, cannot be held")
        priority = self._get_message_priority(message, reverse=False)  # type: ignore[no-untyped-call]
        key = self._q_for_pri(queue, priority)  # type: ignore[no-untyped-call]
        held.append(Held(self.global_keyprefix + key, dumps(message)))  # type: ignore[no-untyped-call]


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the channel above."""

    Channel = Channel
