"""Long-poll wake-ups over Redis pub/sub: one subscription per process, shared by every wait.

The change scripts publish ``<job key> <version> <finished 0|1>`` on one channel,
``imgserve:changed``: a job's finish always, its progress at most every
``QUIET_SECONDS`` (a 200-image job would otherwise send hundreds of messages a
second). A process that long-polls keeps one listener thread subscribed to it and
hands each message to the waits registered for that job, so a long-poll costs no
connection and no SUBSCRIBE of its own. A wait reads the job itself QUIET_SECONDS
after it began (a change that soon after a published one was not published), and
every ``RECHECK_SECONDS``, so a message lost while the listener reconnects delays
an answer by at most that long, and a Redis that went away turns into StoreUnavailable.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import redis

CHANNEL = "imgserve:changed"
RECHECK_SECONDS = 1.0
QUIET_SECONDS = 0.1
"""A job's progress is published at most this often (its finish always at once)."""
IDLE_EXIT_SECONDS = 30.0
"""The listener thread ends after this long without a wait (a new wait starts it again)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Change:
    """One published change of a job."""

    version: int
    finished: bool


@dataclass
class Wait:
    """One long-poll's view of its job, kept up to date by the listener.

    The listener wakes the wait only twice at most, however many changes come:
    at the first change past ``version``, and when the job finishes.
    """

    version: int
    changed: bool = False
    finished: bool = False
    woken: threading.Event = field(default_factory=threading.Event)
    subscription: int | None = None
    """Which subscription of the listener was in place when the wait registered, if any."""

    def hear(self, change: Change) -> None:
        """Take a published change of the job; wake the wait if it needs to know."""
        if change.finished and not self.finished:
            self.finished = self.changed = True
            self.woken.set()
        elif change.version > self.version and not self.changed:  # not a late, older one
            self.changed = True
            self.woken.set()


def parse(data: bytes) -> tuple[str, Change]:
    """Split a published message into the job's key and its change."""
    key, version, finished = data.decode().rsplit(" ", 2)
    return key, Change(int(version), finished == "1")


class ChangeListener:
    """One pub/sub subscription shared by every long-poll of this process."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._waits: dict[str, list[Wait]] = {}
        self._thread: threading.Thread | None = None
        self._subscribed = threading.Event()
        self._subscriptions = 0  # subscriptions confirmed so far: a new one after each loss
        self._closing = threading.Event()

    def close(self) -> None:
        """Stop the listener thread, if it runs, and wait for it to let go of its connection."""
        self._closing.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=2 * RECHECK_SECONDS)

    def register(self, key: str, version: int, *, settle: bool = True) -> Wait:
        """Start following the changes of the job at key past version (until unregister).

        settle: wait (up to RECHECK_SECONDS) for the subscription to be in place, so that
        the first change after this is heard rather than found at a recheck.
        """
        wait = Wait(version)
        with self._lock:
            self._waits.setdefault(key, []).append(wait)
            if self._thread is None or not self._thread.is_alive():
                self._subscribed.clear()
                self._thread = threading.Thread(
                    target=self._listen, name="imgserve-changes", daemon=True
                )
                self._thread.start()
            elif self._subscribed.is_set():
                wait.subscription = self._subscriptions
        # A change published before the subscription is in place is caught by the
        # wait's own read after this; the wait does not depend on this handshake.
        if settle:
            self.settle()
        return wait

    def settle(self) -> None:
        """Wait (up to RECHECK_SECONDS) for the subscription to be in place."""
        self._subscribed.wait(timeout=RECHECK_SECONDS)

    def heard_everything(self, wait: Wait) -> bool:
        """Return whether every change published since the wait registered reached it.

        True while the subscription in place at its registration still is (a lost one
        may have lost messages): a wait registered before its job existed then needs
        no read of the job to catch up.
        """
        return (
            wait.subscription is not None
            and self._subscribed.is_set()
            and wait.subscription == self._subscriptions
        )

    def unregister(self, key: str, wait: Wait) -> None:
        """Stop following the changes of the job at key for this wait."""
        with self._lock:
            waits = self._waits.get(key)
            if waits is not None:
                waits.remove(wait)
                if not waits:
                    del self._waits[key]

    def _listen(self) -> None:
        """Deliver published changes to the registered waits; end when idle."""
        idle_since = time.monotonic()
        pubsub = self._client.pubsub()  # type: ignore[no-untyped-call]
        try:
            while not self._closing.is_set():
                try:
                    if not pubsub.subscribed:
                        pubsub.subscribe(CHANNEL)
                    message = pubsub.get_message(timeout=RECHECK_SECONDS)
                except (redis.ConnectionError, redis.TimeoutError, OSError, ValueError) as exc:
                    # ValueError: a socket closed under the read (the client was closed).
                    self._subscribed.clear()
                    pubsub.reset()
                    with self._lock:
                        if not self._waits:  # nobody to tell: the next wait starts afresh
                            self._thread = None
                            return
                    log.warning("change listener lost Redis (%s); waits re-read meanwhile", exc)
                    time.sleep(RECHECK_SECONDS)
                    continue
                if message is not None and message["type"] == "subscribe":
                    with self._lock:
                        self._subscriptions += 1
                        self._subscribed.set()  # Redis confirmed: no change is missed from now
                elif message is not None and message["type"] == "message":
                    try:
                        self._deliver(message["data"])
                    except ValueError:  # not one of imgserve's messages: the thread goes on
                        log.warning("ignored a malformed message on %s", CHANNEL)
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
            for wait in self._waits.get(key, ()):
                wait.hear(change)
