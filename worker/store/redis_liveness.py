"""The Redis store's part of worker liveness: heartbeats in one hash, the reaper's scripts.

Each node's last heartbeat is a field of ``imgserve:workers`` (worker.liveness.Beat as
JSON); an image's holder lives in the job's hash while it runs. The scripts read both
(see lua/prelude.lua's ``lost``), so a start and a reap judge a holder in the same
atomic change that acts on it. ``imgserve:running`` lists every running image with
its start and holder, so a reaper's pass reads two hashes, and runs a script only
for the jobs whose holders look gone.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import cast

import redis
from redis.commands.core import Script

from worker.liveness import FORGET_AFTER, Beat, Holder, Liveness
from worker.store.redis_scripts import CONSTANTS, RUNNING, WORKERS, job_key


class RedisLiveness:
    """The heartbeat and reaper methods of the Redis store (see protocol.JobStore)."""

    client: redis.Redis
    stale_after: float
    time_limit: float
    clock: Callable[[], float]
    _redeliver: Script

    def _answering(self) -> AbstractContextManager[None]:
        """Turn an unreachable, full or read-only Redis into StoreUnavailable."""
        raise NotImplementedError

    def heartbeat(self, node: str, beat: Beat) -> None:
        """Record a worker node's heartbeat; forget the nodes silent for long."""
        with self._answering():
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(WORKERS, node, beat.to_json())
            pipe.hgetall(WORKERS)
            _, beats = pipe.execute()
            forget = beat.at - FORGET_AFTER * self.stale_after
            silent = [name for name, raw in beats.items() if Beat.from_json(raw).at < forget]
            if silent:
                self.client.hdel(WORKERS, *silent)

    def workers(self) -> dict[str, Beat]:
        """Return the last heartbeat of each worker node still kept."""
        with self._answering():
            beats = cast(dict[bytes, bytes], self.client.hgetall(WORKERS))
        return {node.decode(): Beat.from_json(raw) for node, raw in beats.items()}

    def lost_jobs(self, *, silence: bool = True) -> list[str]:
        """Return the ids of the jobs with a running image whose holder looks gone."""
        with self._answering():
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(RUNNING)
            pipe.hgetall(WORKERS)
            running, beats = pipe.execute()
        seen = {node.decode(): Beat.from_json(raw) for node, raw in beats.items()}
        liveness = Liveness(seen, self.clock(), self.stale_after, self.time_limit, silence)
        lost: dict[str, list[bytes]] = {}
        for image, value in running.items():
            started, holder = _running(value)
            if liveness.gone(holder, started):
                lost.setdefault(image.decode().rpartition(":")[0], []).append(image)
        return self._existing(lost)

    def _existing(self, lost: dict[str, list[bytes]]) -> list[str]:
        """Return the jobs of lost that exist; forget the running images of those expired."""
        if not lost:
            return []
        with self._answering():
            pipe = self.client.pipeline(transaction=False)
            for job_id in lost:
                pipe.exists(job_key(job_id))
            exist = pipe.execute()
            expired = [i for (job_id, images), e in zip(lost.items(), exist, strict=True)
                       if not e for i in images]  # fmt: skip
            if expired:
                self.client.hdel(RUNNING, *expired)
        return [job_id for job_id, e in zip(lost, exist, strict=True) if e]

    def redeliver_lost(self, job_id: str, *, silence: bool = True) -> list[range]:
        """Queue again the job's running images whose holder is gone (see Job.redeliver_lost)."""
        flag = "1" if silence else "0"
        args: list[str | float] = [CONSTANTS, self.clock(), self.stale_after, self.time_limit, flag]
        with self._answering():
            flat = self._redeliver(keys=[job_key(job_id)], args=args)
        pairs = zip(flat[::2], flat[1::2], strict=True)
        return [range(int(first), int(stop)) for first, stop in pairs]


def _running(value: bytes) -> tuple[float, Holder | None]:
    """Return a running image's start and holder from its field in imgserve:running."""
    started, *holder = value.decode().split(" ")
    if not holder:
        return float(started), None
    node, pid, until = holder
    return float(started), Holder(node, int(pid), int(until))
