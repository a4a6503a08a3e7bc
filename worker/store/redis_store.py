"""The Redis job store: one hash per job, changed only by Lua scripts.

Layout (every key under the ``imgserve:`` prefix)::

    job:<id>          hash: spec (JSON), state, started_at, finished_at, done, failed,
                      cancelled, running, next_index, version, and per image n:
                      i<n>:s state (absent = queued), i<n>:a attempts, i<n>:e error,
                      i<n>:t start time; expires ttl seconds after creation
    changed           pub/sub channel: "<job key> <version> <finished 0|1>" after every
                      change of any job (see worker.store.redis_changes)
    jobs              sorted set of job ids by creation time (for GET /jobs)
    stats             hash of counters for /metrics

The scripts mirror the reference transitions in ``worker.jobs.Job``; a job's
image fields are read and written inside one script, so a change is atomic and
costs one round trip.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, cast

import redis
from redis.commands.core import Script

from worker.jobs import JOB_STATES, Job, Start, gave_up_message, idle_message, stale_message
from worker.store import (
    Finish,
    Peek,
    SingleSteps,
    Stats,
    Step,
    StoreTimedOut,
    StoreUnavailable,
    counter_increments,
    stats_from_counters,
)
from worker.store.redis_changes import (
    CHANNEL,
    QUIET_SECONDS,
    RECHECK_SECONDS,
    ChangeListener,
    Wait,
)

if TYPE_CHECKING:
    from worker.broker import Held

PREFIX = "imgserve:"
JOBS_INDEX = PREFIX + "jobs"
STATS = PREFIX + "stats"

_PRELUDE = """
local key = KEYS[1]
local function num(field) return tonumber(redis.call('HGET', key, field) or '0') end
local function image_state(i) return redis.call('HGET', key, 'i' .. i .. ':s') or 'queued' end
local function bump(now)
  local v = redis.call('HINCRBY', key, 'version', 1)
  redis.call('HSET', key, 'changed_at', now)
  local finished = (redis.call('HGET', key, 'finished_at') or '') ~= ''
  -- A finish is always published; progress at most every $QUIET s (waits look for it),
  -- timed by Redis's clock: the workers' clocks may disagree.
  local time = redis.call('TIME')
  local clock = tonumber(time[1]) + tonumber(time[2]) / 1000000
  local published = tonumber(redis.call('HGET', key, 'published_at') or '0')
  if finished or clock - published >= $QUIET then
    redis.call('HSET', key, 'published_at', clock)
    local flag = '0'
    if finished then flag = '1' end
    redis.call('PUBLISH', '$CHANNEL', key .. ' ' .. v .. ' ' .. flag)
  end
end
local function settle(now)
  local state = redis.call('HGET', key, 'state')
  if state == 'cancelled' then
    if num('running') == 0 and (redis.call('HGET', key, 'finished_at') or '') == '' then
      redis.call('HSET', key, 'finished_at', now)
    end
    return
  end
  local total, failed = num('total'), num('failed')
  if num('done') + failed + num('cancelled') >= total then
    local final = 'succeeded'
    if failed == total then final = 'failed' elseif failed > 0 then final = 'partially_failed' end
    redis.call('HSET', key, 'state', final, 'finished_at', now)
  end
end
local function settle_image(i, state, err, now)
  redis.call('HSET', key, 'i' .. i .. ':s', state)
  if err then redis.call('HSET', key, 'i' .. i .. ':e', err) end
  local counter = 'cancelled'
  if state == 'succeeded' then counter = 'done' elseif state == 'failed' then counter = 'failed' end
  redis.call('HINCRBY', key, counter, 1)
  settle(now)
end
local function final(state)
  return state ~= 'queued' and state ~= 'running'
end
"""

_PRELUDE = _PRELUDE.replace("$CHANNEL", CHANNEL).replace("$QUIET", repr(QUIET_SECONDS))

_CREATE = """
local pushes = tonumber(ARGV[5])
redis.call('HSET', KEYS[1], unpack(ARGV, 6 + pushes))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
for i = 1, pushes do redis.call('LPUSH', KEYS[2 + i], ARGV[5 + i]) end
"""

_STEP = """
local now, finish_i, err, counters = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local start_i, max_attempts, gave_up = ARGV[5], tonumber(ARGV[6]), ARGV[7]
local claim, window, want_spec = tonumber(ARGV[8]), tonumber(ARGV[9]), ARGV[10]
if redis.call('EXISTS', key) == 0 then
  if start_i ~= '' then return {'skip', 0, 0, '', 0} end
  return {'', 0, 0, '', 0}
end

local function finish_image(i)
  if image_state(i) ~= 'running' then return end
  redis.call('HINCRBY', key, 'running', -1)
  if err == '' then
    settle_image(i, 'succeeded', false, now)
  else
    settle_image(i, 'failed', err, now)
  end
  bump(now)
  for _, pair in ipairs(cjson.decode(counters)) do
    redis.call('HINCRBYFLOAT', KEYS[2], pair[1], pair[2])
  end
end

local attempt = 0
local function start_image(i)
  local st = image_state(i)
  if st == 'succeeded' or st == 'failed' or st == 'cancelled' then return 'skip' end
  if st == 'running' then redis.call('HINCRBY', key, 'running', -1) end
  if redis.call('HGET', key, 'state') == 'cancelled' then
    settle_image(i, 'cancelled', false, now); bump(now); return 'skip'
  end
  attempt = redis.call('HINCRBY', key, 'i' .. i .. ':a', 1)
  if attempt > max_attempts then
    settle_image(i, 'failed', gave_up, now); bump(now); return 'gave_up'
  end
  redis.call('HSET', key, 'i' .. i .. ':s', 'running', 'i' .. i .. ':t', now)
  redis.call('HINCRBY', key, 'running', 1)
  if redis.call('HGET', key, 'state') == 'queued' then
    redis.call('HSET', key, 'state', 'running', 'started_at', now)
  end
  bump(now)
  return 'run'
end

local function claim_next()
  if final(redis.call('HGET', key, 'state')) then return 0, 0 end
  local n, total = num('next_index'), num('total')
  if n >= total then return 0, 0 end
  local taken = math.max(1, math.min(claim, math.ceil((total - n) / window)))
  redis.call('HSET', key, 'next_index', n + taken)
  return n, taken
end

if finish_i ~= '' then finish_image(finish_i) end
local started, first, taken, spec = '', 0, 0, ''
if start_i ~= '' then started = start_image(start_i) end
if claim > 0 then first, taken = claim_next() end
if want_spec == '1' then spec = redis.call('HGET', key, 'spec') end
return {started, first, taken, spec, attempt}
"""

_CANCEL = """
if redis.call('EXISTS', key) == 0 then return 0 end
if final(redis.call('HGET', key, 'state')) then return 1 end
local n = 0
for i = 0, num('total') - 1 do
  if image_state(i) == 'queued' then
    redis.call('HSET', key, 'i' .. i .. ':s', 'cancelled'); n = n + 1
  end
end
redis.call('HINCRBY', key, 'cancelled', n)
redis.call('HSET', key, 'state', 'cancelled')
settle(ARGV[1]); bump(ARGV[1])
return 1
"""

_REAP = """
if redis.call('EXISTS', key) == 0 or final(redis.call('HGET', key, 'state')) then return 0 end
local older_than, now, lost, idle_msg, n = tonumber(ARGV[1]), ARGV[2], ARGV[3], ARGV[4], 0
local idle = tonumber(redis.call('HGET', key, 'changed_at') or '0') < older_than
for i = 0, num('total') - 1 do
  local st = image_state(i)
  local started = tonumber(redis.call('HGET', key, 'i' .. i .. ':t') or '0')
  if st == 'running' and started < older_than then
    redis.call('HINCRBY', key, 'running', -1)
    settle_image(i, 'failed', lost, now); n = n + 1
  elseif st == 'queued' and idle then
    settle_image(i, 'failed', idle_msg, now); n = n + 1
  end
end
if n > 0 then bump(now) end
return n
"""


class RedisJobStore(SingleSteps):
    """A job store in Redis, shared by any number of API and worker machines."""

    def __init__(self, client: redis.Redis, *, ttl: int) -> None:
        self.client = client
        self.ttl = ttl
        self._create = self.client.register_script(_CREATE)
        self._step = self._script(_STEP)
        self._cancel = self._script(_CANCEL)
        self._reap = self._script(_REAP)
        self._changes = ChangeListener(client)
        self._local = threading.local()  # followed: this thread's following() waits

    @classmethod
    def from_url(cls, url: str, *, ttl: int) -> RedisJobStore:
        """Connect to the Redis at url, failing fast when it does not answer."""
        client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
        return cls(client, ttl=ttl)

    def _script(self, body: str) -> Script:
        """Register a Lua script with the shared prelude."""
        return self.client.register_script(_PRELUDE + body)

    @contextmanager
    def _answering(self) -> Iterator[None]:
        """Turn Redis connection failures into StoreUnavailable (StoreTimedOut on a timeout)."""
        try:
            yield
        except redis.TimeoutError as exc:
            raise StoreTimedOut(f"Redis did not answer in time: {exc}") from exc
        except redis.ConnectionError as exc:
            raise StoreUnavailable(f"Redis does not answer: {exc}") from exc

    def close(self) -> None:
        """Stop the long-poll listener and close the connections."""
        self._changes.close()
        self.client.close()

    def ping(self) -> None:
        """Raise StoreUnavailable unless Redis answers."""
        with self._answering():
            self.client.ping()

    def create(self, job: Job, *, window: int, messages: Sequence[Held] = ()) -> list[int]:
        """Store a new job and claim its first window of images; push messages with it.

        One script: the job, its place in the index and its first tasks' messages
        (held back from the broker, worker.broker) arrive together or not at all, so
        no worker takes a task of a job not yet stored, and no job waits for tasks
        that were never sent.
        """
        first = job.first_window(window)
        fields: dict[str, str | int | float] = {
            "spec": json.dumps(job.spec()),
            "state": job.state,
            "total": job.total,
            "next_index": len(first),
            "version": 0,
            "changed_at": job.created_at,
            "started_at": "",
            "finished_at": "",
        }
        pairs = [item for field in fields.items() for item in field]
        args: list[str | int | float] = [
            job.id, job.created_at, self.ttl, time.time() - self.ttl,
            len(messages), *(m.payload for m in messages), *pairs,
        ]  # fmt: skip
        keys = [_key(job.id), JOBS_INDEX, *(m.key for m in messages)]
        with self._answering():
            self._create(keys=keys, args=args)
        return first

    def get(self, job_id: str) -> Job | None:
        """Return the job, or None."""
        with self._answering():
            raw = cast(dict[bytes, bytes], self.client.hgetall(_key(job_id)))
        return _job_from_hash(raw)

    def list_jobs(self, *, limit: int, offset: int) -> list[Job]:
        """Return recent jobs, newest first."""
        with self._answering():
            ids = cast(list[bytes], self.client.zrevrange(JOBS_INDEX, offset, offset + limit - 1))
            pipe = self.client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hgetall(_key(job_id.decode()))
            hashes = pipe.execute()
        jobs = (_job_from_hash(raw) for raw in hashes)
        return [job for job in jobs if job is not None]

    def step(
        self,
        job_id: str,
        *,
        finish: Finish | None = None,
        start: int | None = None,
        claim: int = 0,
        window: int = 1,
        max_attempts: int = 3,
        spec: bool = False,
    ) -> Step:
        """Move a job along in one Lua script (see JobStore.step)."""
        counters = (
            counter_increments("failed" if finish.error else "succeeded", finish.timings)
            if finish is not None
            else []
        )
        args: list[str | int | float] = [
            time.time(),
            "" if finish is None else finish.index,
            "" if finish is None else finish.error or "",
            json.dumps(counters),
            "" if start is None else start,
            max_attempts,
            gave_up_message(max_attempts),
            claim,
            window,
            "1" if spec else "0",
        ]
        with self._answering():
            started, first, taken, raw, attempt = self._step(keys=[_key(job_id), STATS], args=args)
        return Step(
            started=cast(Start, started.decode()) if started else None,
            claimed=range(int(first), int(first) + int(taken)),
            spec=Job.from_spec(json.loads(raw)) if raw else None,
            attempt=int(attempt),
        )

    def cancel(self, job_id: str) -> Job | None:
        """Cancel the job's images that have not started."""
        with self._answering():
            self._cancel(keys=[_key(job_id)], args=[time.time()])
        return self.get(job_id)

    def reap_stale(self, job_id: str, *, older_than: float) -> int:
        """Fail the images whose worker is gone (see Job.reap)."""
        now = time.time()
        lost, idle = stale_message(now - older_than), idle_message(now - older_than)
        with self._answering():
            n = self._reap(keys=[_key(job_id)], args=[older_than, now, lost, idle])
        return int(n)

    def peek(self, job_id: str) -> Peek | None:
        """Return the job's version, whether it is finished and when it last changed."""
        with self._answering():
            version, finished_at, changed_at = cast(
                list[bytes | None],
                self.client.hmget(_key(job_id), ["version", "finished_at", "changed_at"]),
            )
        if version is None:
            return None
        return Peek(int(version), bool(finished_at), float(changed_at or 0))

    @contextmanager
    def following(self, job_id: str) -> Iterator[None]:
        """Follow the job's changes from now on: a wait for it inside needs no first read."""
        key = _key(job_id)
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
        key = _key(job_id)
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
        with self._answering():
            ids = cast(list[bytes], self.client.zrange(JOBS_INDEX, 0, -1))
            pipe = self.client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hget(_key(job_id.decode()), "state")
            states = pipe.execute()
            counters = cast(dict[bytes, bytes], self.client.hgetall(STATS))
        jobs: dict[str, int] = dict.fromkeys(JOB_STATES, 0)
        for state in states:
            if state is not None:
                jobs[state.decode()] += 1
        return stats_from_counters(jobs, {k.decode(): v.decode() for k, v in counters.items()})


def _key(job_id: str) -> str:
    """Return the Redis key of a job."""
    return f"{PREFIX}job:{job_id}"


def _job_from_hash(raw: dict[bytes, bytes]) -> Job | None:
    """Rebuild a job from its hash (None for a missing or expired job)."""
    if not raw or b"spec" not in raw:
        return None
    fields: dict[str, str] = {k.decode(): v.decode() for k, v in raw.items()}
    job = Job.from_spec(json.loads(fields["spec"]))
    job.state = fields["state"]  # type: ignore[assignment]
    job.started_at = float(fields["started_at"]) if fields.get("started_at") else None
    job.finished_at = float(fields["finished_at"]) if fields.get("finished_at") else None
    job.changed_at = float(fields["changed_at"]) if fields.get("changed_at") else None
    for name in ("done", "failed", "cancelled", "running", "next_index", "version"):
        setattr(job, name, int(fields.get(name, 0)))
    for n, image in enumerate(job.images):
        image.state = fields.get(f"i{n}:s", "queued")  # type: ignore[assignment]
        image.attempts = int(fields.get(f"i{n}:a", 0))
        image.error = fields.get(f"i{n}:e")
        image.started = float(fields[f"i{n}:t"]) if f"i{n}:t" in fields else None
    return job
