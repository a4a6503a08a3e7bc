"""kombu's Redis transport, with one client for a channel's own commands.

kombu builds a new ``redis.Redis`` for every command it sends outside its event
loop (``Channel.conn_or_acquire``): every publish, every queue length. Building one
copies redis-py's ~170 reply callbacks into a case-insensitive dict: 0.2 ms of CPU, as
much as the publish's round trip to Redis itself (benchmarks/RESULTS-service.md). A
``redis.Redis`` is safe to share between threads (each command takes a connection
from the pool), so a channel keeps one, made again whenever kombu replaces the
channel's connection pool (after a fork, after a connection error).

Celery uses it through ``broker_transport`` (worker/celery_app.py) for ``redis://`` URLs;
``rediss://`` and ``sentinel://`` keep kombu's own transport, which their schemes select.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis


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


class Transport(kombu_redis.Transport):
    """kombu's Redis transport with the channel above."""

    Channel = Channel
