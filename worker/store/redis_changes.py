"""Long-poll wake-ups over Redis pub/sub: one subscription per process, shared by every wait.

Every change script publishes ``<job key> <version> <finished 0|1>`` on one channel,
``imgserve:changed``. A process that long-polls keeps one listener thread subscribed
to it and hands each message to the waits registered for that job, so a long-poll
costs no connection and no SUBSCRIBE of its own. Waits also re-read the job every
``RECHECK_SECONDS``, so a message lost while the listener reconnects delays an
answer by at most that long, and a Redis that went away turns into StoreUnavailable.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass

import redis

CHANNEL = "imgserve:changed"
RECHECK_SECONDS = 1.0
IDLE_EXIT_SECONDS = 30.0
"""The listener thread ends after this long without a wait (a new wait starts it again)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """One published change of a job."""

    version: int
    finished: bool


def parse(data: bytes) -> tuple[str, Change]:
    """Split a published message into the job's key and its change."""
    key, version, finished = data.decode().rsplit(" ", 2)
    return key, Change(int(version), finished == "1")


class ChangeListener:
    """One pub/sub subscription shared by every long-poll of this process."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._waits: dict[str, set[queue.SimpleQueue[Change]]] = {}
        self._thread: threading.Thread | None = None
        self._subscribed = threading.Event()

    def register(self, key: str) -> queue.SimpleQueue[Change]:
        """Start receiving the changes of the job at key (until unregister)."""
        inbox: queue.SimpleQueue[Change] = queue.SimpleQueue()
        with self._lock:
            self._waits.setdefault(key, set()).add(inbox)
            if self._thread is None or not self._thread.is_alive():
                self._subscribed.clear()
                self._thread = threading.Thread(
                    target=self._listen, name="imgserve-changes", daemon=True
                )
                self._thread.start()
        # A change published before the subscription is in place is caught by the
        # wait's own read after this; the wait does not depend on this handshake.
        self._subscribed.wait(timeout=RECHECK_SECONDS)
        return inbox

    def unregister(self, key: str, inbox: queue.SimpleQueue[Change]) -> None:
        """Stop receiving the changes of the job at key."""
        with self._lock:
            inboxes = self._waits.get(key)
            if inboxes is not None:
                inboxes.discard(inbox)
                if not inboxes:
                    del self._waits[key]

    def _listen(self) -> None:
        """Deliver published changes to the registered waits; end when idle."""
        idle_since = time.monotonic()
        pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
        try:
            while True:
                try:
                    if not pubsub.subscribed:
                        pubsub.subscribe(CHANNEL)
                    message = pubsub.get_message(timeout=RECHECK_SECONDS)
                except (redis.ConnectionError, redis.TimeoutError) as exc:
                    self._subscribed.clear()
                    log.warning("change listener lost Redis (%s); waits re-read meanwhile", exc)
                    time.sleep(RECHECK_SECONDS)
                    pubsub.reset()
                    continue
                if message is not None and message["type"] == "subscribe":
                    self._subscribed.set()  # Redis confirmed: no change is missed from now
                elif message is not None and message["type"] == "message":
                    self._deliver(message["data"])
                with self._lock:
                    if self._waits:
                        idle_since = time.monotonic()
                    elif time.monotonic() - idle_since > IDLE_EXIT_SECONDS:
                        self._thread = None
                        return
        finally:
            pubsub.close()

    def _deliver(self, data: bytes) -> None:
        """Hand one message to the waits of its job."""
        key, change = parse(data)
        with self._lock:
            inboxes = list(self._waits.get(key, ()))
        for inbox in inboxes:
            inbox.put(change)
