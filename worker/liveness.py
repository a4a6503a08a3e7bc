"""Who runs an image, and whether they still do: holders, heartbeats and the rule between them.

A start records its holder on the image: the worker node (Celery's node name) and
the pool process that runs it. Each worker's main process records a heartbeat in the
store every ``HEARTBEAT`` seconds: its node name and the pids of its live pool
processes. An image's holder is gone when

- nothing was heard of it for ``IMGSERVE_STALE_AFTER`` seconds: neither a heartbeat of
  its node nor the start itself (so an image started before its node's first heartbeat
  is not lost), or
- a heartbeat of its node newer than the start no longer lists its pool process, or
- the start is older than the hard time limit and stale_after together: no attempt
  outlives the hard time limit, so its process, however alive, gave the image up (a
  task put back in the queue after a long outage, or stopped by an error between two
  store calls).

A running image whose holder is gone is redelivered (see ``worker.jobs.Job``); one
whose holder works on it is never touched, and a queued one never, however long it
waits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

HEARTBEAT = 2.0
"""Seconds between two heartbeats of a worker."""
STALE_AFTER = 30
"""Seconds without a heartbeat after which a worker counts as gone (IMGSERVE_STALE_AFTER)."""
HARD_TIME_LIMIT = 330
"""Seconds a task runs at most (IMGSERVE_HARD_TIME_LIMIT): so does an attempt of an image."""
FORGET_AFTER = 2
"""The stores forget a heartbeat this many times stale_after older than a newer one: by
then its silence alone tells its node's holders gone."""


@dataclass(frozen=True)
class Holder:
    """Who runs an image: a worker node, its pool process, and where its task's images end."""

    node: str
    pid: int
    until: int
    """The end (exclusive) of its task's images: a lost holder's are redelivered up to it."""


@dataclass(frozen=True)
class Beat:
    """One heartbeat of a worker node: when, and its live pool processes then."""

    at: float
    """When the pool processes were listed (before the beat was sent)."""
    pids: tuple[int, ...]

    def to_json(self) -> str:
        """Return the beat as the stores keep it."""
        return json.dumps({"at": self.at, "pids": list(self.pids)})

    @classmethod
    def from_json(cls, text: str | bytes) -> Beat:
        """Rebuild a beat from what to_json returned."""
        fields = json.loads(text)
        return cls(float(fields["at"]), tuple(int(pid) for pid in fields["pids"]))


@dataclass(frozen=True)
class Liveness:
    """What the heartbeats say at one moment, and the rule that tells a holder gone."""

    beats: Mapping[str, Beat]
    now: float
    stale_after: float
    time_limit: float = HARD_TIME_LIMIT
    """The hard time limit: no attempt lasts longer."""
    silence: bool = True
    """Whether silence counts: False for a reaper that may not have heard every live worker
    yet (its own store was out of reach lately): then only missing pids and age count."""

    def gone(self, holder: Holder | None, started: float | None) -> bool:
        """Return whether the holder of an image started at started is gone."""
        beat = None if holder is None else self.beats.get(holder.node)
        heard = max(started or 0.0, 0.0 if beat is None else beat.at)
        if self.silence and heard < self.now - self.stale_after:
            return True
        if (started or 0.0) < self.now - self.time_limit - self.stale_after:
            return True
        return (
            beat is not None
            and holder is not None
            and beat.at > (started or 0.0)
            and holder.pid not in beat.pids
        )
