"""The Redis job store: one hash per job, changed only by Lua scripts (see redis_scripts).

Its scripts are atomic and cost one round trip each; reads are plain commands.
Every call that gets no answer within 2 s fails, as StoreTimedOut; a Redis that is
down, loading, full (maxmemory) or a read-only replica is StoreUnavailable: all of
them pass, so callers try again later.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import cast

import redis
from redis.backoff import NoBackoff
from redis.exceptions import OutOfMemoryError, ReadOnlyError
from redis.retry import Retry

from worker.jobs import Job
from worker.liveness import HARD_TIME_LIMIT, STALE_AFTER
from worker.store.errors import (
    InputInUse,
    OutputsBusy,
    StoreTimedOut,
    StoreUnavailable,
    TooManyActive,
)
from worker.store.metrics import Stats, stats_from_counters
from worker.store.protocol import UNLIMITED, Admission, Move, Peek, Step, output_claims
from worker.store.redis_changes import QUIET_SECONDS, RECHECK_SECONDS, ChangeListener, Wait
from worker.store.redis_liveness import RedisLiveness
from worker.store.redis_scripts import (
    CONSTANTS,
    JOBS_IN,
    JOBS_INDEX,
    SCRIPTS,
    STATS,
    create_call,
    job_from_hash,
    job_key,
    move_json,
    owner_key,
    step_from_reply,
)


class RedisJobStore(RedisLiveness):
    """A job store in Redis, shared by any number of API and worker machines."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        ttl: int,
        stale_after: float = STALE_AFTER,
        time_limit: float = HARD_TIME_LIMIT,
        clock: Callable[[], float] = time.time,
        admission: Admission = UNLIMITED,
    ) -> None:
        self.client = client
        self.admission = admission
        self.ttl = ttl
        self.stale_after = stale_after
        self.time_limit = time_limit
        self.clock = clock
        self._create = client.register_script(SCRIPTS["create"])
        self._step = client.register_script(SCRIPTS["step"])
        self._cancel = client.register_script(SCRIPTS["cancel"])
        self._redeliver = client.register_script(SCRIPTS["redeliver"])
        self._admit = client.register_script(SCRIPTS["admit"])
        self._changes = ChangeListener(client)
        self._local = threading.local()  # followed: this thread's following() waits

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        ttl: int,
        stale_after: float = STALE_AFTER,
        admission: Admission = UNLIMITED,
        time_limit: float = HARD_TIME_LIMIT,
    ) -> RedisJobStore:
        """Connect to the Redis at url; a call that gets no answer in 2 s fails.

        Nothing is tried again inside redis-py, whatever its version's defaults: a script
        that timed out may have run, so the store's callers decide (a worker retries, the
        API answers 503).
        """
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=2,
            socket_timeout=2,
            health_check_interval=30,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(
            client, ttl=ttl, stale_after=stale_after, time_limit=time_limit, admission=admission
        )

    @contextmanager
    def _answering(self) -> Iterator[None]:
        """Turn an unreachable, full or read-only Redis into StoreUnavailable."""
        try:
            yield
        except redis.TimeoutError as exc:
            raise StoreTimedOut(f"Redis did not answer in time: {_unnamed(exc)}") from exc
        except redis.ConnectionError as exc:
            raise StoreUnavailable(f"Redis does not answer: {_unnamed(exc)}") from exc
        except redis.ResponseError as exc:  # a Redis before 7 words them as script errors
            if isinstance(exc, OutOfMemoryError) or "OOM command not allowed" in str(exc):
                raise StoreUnavailable(f"Redis is full (maxmemory): {exc}") from exc
            if isinstance(exc, ReadOnlyError) or "READONLY" in str(exc):
                raise StoreUnavailable(f"Redis is a read-only replica for now: {exc}") from exc
            raise

    def close(self) -> None:
        """Stop the long-poll listener and close the connections."""
        self._changes.close()
        self.client.close()

    def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers."""
        with self._answering():
            self.client.ping()

    def create(self, job: Job, *, window: int) -> list[int]:
        """Store a new job and claim its first window of images, unless an output is busy.

        One script checks the owner's active jobs and that no queued or running job writes
        (or, with shared roots, reads) one of its outputs, then stores the job, indexes it
        and takes its outputs and inputs, or does nothing.
        """
        first = job.first_window(window)
        keys, args = create_call(job, len(first), self.ttl, self.clock(), self.admission)
        with self._answering():
            refused = self._create(keys=keys, args=args)
        if not refused:
            return first
        if refused[0] == b"active":
            raise TooManyActive(job.owner or "", self.admission.max_active or 0)
        _, index, output = output_claims(job)[int(refused[1]) - 1]
        other = refused[2].decode()
        raise (OutputsBusy if refused[0] == b"output" else InputInUse)(index, output, other)

    def admit(self, owner: str, *, rate: float, burst: int) -> float:
        """Take a submission token from owner's bucket, in one script."""
        with self._answering():
            wait = self._admit(keys=[owner_key(owner, "rate")], args=[self.clock(), rate, burst])
        return float(wait)

    def get(self, job_id: str) -> Job | None:
        """Return the job as stored, or None."""
        with self._answering():
            raw = cast(dict[bytes, bytes], self.client.hgetall(job_key(job_id)))
        return job_from_hash(raw)

    def list_jobs(self, *, limit: int, offset: int, owner: str | None = None) -> list[Job]:
        """Return recent jobs, newest first: every job, or only owner's."""
        index = JOBS_INDEX if owner is None else owner_key(owner, "jobs")
        with self._answering():
            ids = cast(list[bytes], self.client.zrevrange(index, offset, offset + limit - 1))
            pipe = self.client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hgetall(job_key(job_id.decode()))
            hashes = pipe.execute()
        jobs = (job_from_hash(raw) for raw in hashes)
        return [job for job in jobs if job is not None]

    def step(self, job_id: str, move: Move) -> Step:
        """Move a job along in one Lua script (see Move)."""
        args: list[str | float] = [
            CONSTANTS,
            self.clock(),
            move_json(move, self.stale_after, self.time_limit),
        ]
        with self._answering():
            reply = self._step(keys=[job_key(job_id), STATS], args=args)
        return step_from_reply(reply)

    def cancel(self, job_id: str) -> Job | None:
        """Cancel the job's images that have not started."""
        with self._answering():
            self._cancel(keys=[job_key(job_id)], args=[CONSTANTS, self.clock()])
        return self.get(job_id)

    def peek(self, job_id: str) -> Peek | None:
        """Return the job's version, whether it is finished and when it last changed."""
        with self._answering():
            version, finished_at, changed_at = cast(
                list[bytes | None],
                self.client.hmget(job_key(job_id), ["version", "finished_at", "changed_at"]),
            )
        if version is None:
            return None
        return Peek(int(version), bool(finished_at), float(changed_at or 0))

    @contextmanager
    def following(self, job_id: str) -> Iterator[None]:
        """Follow the job's changes from now on: a wait for it inside needs no first read."""
        key = job_key(job_id)
        followed = self._followed_waits()
        # No waiting for the subscription: the job does not exist yet, and a wait that
        # registered before the subscription was in place reads the job first.
        followed[key] = self._changes.register(key, 0, settle=False)
        try:
            yield
        finally:
            self._changes.unregister(key, followed.pop(key))

    def _followed_waits(self) -> dict[str, Wait]:
        """Return this thread's waits made by following(), by job key."""
        waits: dict[str, Wait] | None = getattr(self._local, "followed", None)
        if waits is None:
            waits = self._local.followed = {}
        return waits

    def wait(self, job_id: str, *, version: int, timeout: float, coalesce: float = 0.0) -> None:
        """Return once the job changed (woken by the shared listener), or after timeout.

        Progress is published at most every QUIET_SECONDS, so the wait also reads the
        job itself once that long (or coalesce, if longer) has passed: a change made
        within QUIET_SECONDS of one published before the wait began goes unpublished.
        A wait inside following() of a job not yet created then heard every change the
        job had: it reads the job only every RECHECK_SECONDS (a lost message's bound).
        """
        now = time.monotonic()
        deadline, settle_at = now + timeout, now + coalesce
        key = job_key(job_id)
        followed = self._followed_waits().get(key)
        wait = followed or self._changes.register(key, version)
        caught_up = followed is not None and self._changes.heard_everything(followed)
        if followed is not None and not caught_up:
            self._changes.settle()  # then read: every change after that read is heard
        look_at = now + (RECHECK_SECONDS if caught_up else max(coalesce, QUIET_SECONDS))
        try:
            read = not caught_up
            while True:
                wait.woken.clear()
                if read:
                    seen = self.peek(job_id)
                    if seen is None or seen.finished:
                        return
                    if seen.version != version:
                        wait.changed = True  # only ever set: the listener sets it too
                now = time.monotonic()
                if wait.finished or now >= deadline or (wait.changed and now >= settle_at):
                    return
                times = [deadline, now + RECHECK_SECONDS]
                if wait.changed:
                    times.append(settle_at)
                elif now < look_at:
                    times.append(look_at)
                until = min(times)
                read = not wait.woken.wait(until - now)  # a wake-up brings its own news
        finally:
            if followed is None:
                self._changes.unregister(key, wait)

    def stats(self) -> Stats:
        """Return counts of jobs by state, images by outcome, and operation times."""
        now = self.clock()
        with self._answering():
            pipe = self.client.pipeline(transaction=False)
            for key in JOBS_IN.values():
                pipe.zcount(key, now, "+inf")  # not expired yet
            pipe.hgetall(STATS)
            *counts, counters = pipe.execute()
        jobs = {state.value: int(n) for state, n in zip(JOBS_IN, counts, strict=True)}
        return stats_from_counters(jobs, {k.decode(): v.decode() for k, v in counters.items()})


_ADDRESS = re.compile(r"\[[0-9a-fA-F:]+\]:\d+|[\w.-]+:\d+")


def _unnamed(exc: Exception) -> str:
    """Return a connection error's words without the server's address (answers show them)."""
    return _ADDRESS.sub("the server", str(exc))
