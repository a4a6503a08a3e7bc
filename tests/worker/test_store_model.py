"""Every store against the reference state machine: the same random steps, the same answers.

``worker.jobs.Job`` is the reference, ``worker.liveness.Liveness`` its rule for lost
holders. A hypothesis state machine submits jobs of three owners (one anonymous) whose
outputs often collide with other jobs' outputs and inputs, and starts (under random
holders), finishes, fails, cancels, reaps, redelivers (a start of a running image) and
claims images in random order, and sends heartbeats of random pool processes, on a store
and on a reference copy of each job, with one clock that only the test moves. After every
step each answer must be the reference's, and so must every job as the store reads it
(holders included), its peek, the listings (each owner's too), the stats, the heartbeats
kept and the jobs whose running images look lost. A store refuses an owner's job beyond
MAX_ACTIVE queued or running ones.
"""

from __future__ import annotations

import copy
import posixpath
import uuid
from collections.abc import Callable
from pathlib import Path

import fakeredis
import pytest
import redis
from hypothesis import HealthCheck, Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from tests.support import Clock
from worker.jobs import ACTIVE_JOB_STATES, ImageRecord, ImageState, Job, JobState, Lost
from worker.liveness import FORGET_AFTER, Beat, Holder, Liveness
from worker.store import (
    Admission,
    Finish,
    InputInUse,
    JobStore,
    Move,
    OutputsBusy,
    Peek,
    TooManyActive,
)
from worker.store.metrics import counter_increments, stats_from_counters
from worker.store.protocol import apply_move, missing_step, output_claims
from worker.store.redis_store import RedisJobStore
from worker.store.sqlite_store import SqliteJobStore

STALE_AFTER = 50.0
TIME_LIMIT = 100.0
TTL = 10**7  # nothing expires while the machine runs (expiry has tests of its own)
OUTPUTS = ("a.png", "b.png", "c.png", "./a.png", "d/../b.png", "e/f.png")
"""Few files under several spellings: new jobs often collide with running ones."""
INPUTS = ("in/0.png", "in/1.png", "c.png", "e//f.png")
"""Inputs, two of them outputs under other spellings: an output may hit an active input."""
OWNERS = (None, "alice", "bob")
MAX_ACTIVE = 3
ADMISSION = Admission(max_active=MAX_ACTIVE, inputs_shared=True)
TIMINGS = st.lists(
    st.tuples(st.sampled_from(["decode", "resize"]), st.sampled_from([0.0078125, 0.25, 1.5, 40.0])),
    max_size=2,
)  # binary fractions: every store sums them exactly
MODEL_SETTINGS = settings(
    max_examples=200,
    stateful_step_count=30,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow],
)


NODES = ("a@host", "b@host")
PIDS = (1, 2, 3)
HOLDERS = st.tuples(st.sampled_from(NODES), st.sampled_from(PIDS), st.integers(1, 3))
"""Holders of few nodes and processes (a heartbeat often tells one of them gone), and how
many images from the one they start their task holds."""

OpenStore = Callable[[Clock], JobStore]
OUTPUT_LISTS = st.lists(
    st.sampled_from(OUTPUTS), min_size=1, max_size=3, unique_by=posixpath.normpath
)


class StoreMachine(RuleBasedStateMachine):
    """One store and the reference, moved by the same steps."""

    def __init__(self, open_store: OpenStore) -> None:
        super().__init__()
        self.clock = Clock(1_800_000_000.0)
        self.store = open_store(self.clock)
        self.reference: dict[str, Job] = {}
        self.counters: dict[str, float] = {}
        self.beats: dict[str, Beat] = {}

    def teardown(self) -> None:
        """Let go of the store's connections."""
        self.store.close()  # type: ignore[attr-defined]

    def job_id(self, data: st.DataObject) -> str:
        """Draw a stored job's id."""
        return data.draw(st.sampled_from(list(self.reference)))

    def index(self, data: st.DataObject, job_id: str) -> int:
        """Draw an image index of the job."""
        return data.draw(st.integers(0, self.reference[job_id].total - 1))

    def running(self) -> list[tuple[str, int]]:
        """Return every running image: its job and index."""
        return [
            (job.id, n)
            for job in self.reference.values()
            for n, image in enumerate(job.images)
            if image.state == ImageState.RUNNING
        ]

    def lost(self, *, silence: bool = True) -> Lost:
        """Return the reference's rule for lost holders, by the heartbeats sent so far."""
        liveness = Liveness(dict(self.beats), self.clock.now, STALE_AFTER, TIME_LIMIT, silence)
        return lambda image: liveness.gone(image.holder, image.started)

    @initialize(outputs=OUTPUT_LISTS, window=st.integers(1, 3), data=st.data())
    def submit_a_first_job(self, outputs: list[str], window: int, data: st.DataObject) -> None:
        """Begin with a job, so that every sequence has one to move."""
        self.submit(outputs, window, data)

    @rule(outputs=OUTPUT_LISTS, window=st.integers(1, 3), data=st.data())
    def submit(self, outputs: list[str], window: int, data: st.DataObject) -> None:
        """Submit a job; it is refused while its owner has MAX_ACTIVE active jobs, or a
        queued or running job writes one of its outputs, or reads one."""
        self.clock.now += 1.0
        owner = data.draw(st.sampled_from(OWNERS))
        inputs = [data.draw(st.sampled_from(INPUTS)) for _ in outputs]
        job = Job(
            id=uuid.uuid4().hex,
            operations=[{"op": "blur", "kernel": 3}],
            encode={"jpeg_quality": 90},
            images=[ImageRecord(i, out, [out]) for i, out in zip(inputs, outputs, strict=True)],
            created_at=self.clock.now,
            owner=owner,
        )
        active = [j for j in self.reference.values() if j.state in ACTIVE_JOB_STATES]
        if owner is not None and sum(j.owner == owner for j in active) >= MAX_ACTIVE:
            with pytest.raises(TooManyActive) as too_many:
                self.store.create(copy.deepcopy(job), window=window)
            assert (too_many.value.owner, too_many.value.limit) == (owner, MAX_ACTIVE)
            event("submit refused: too many active jobs")
            return
        readers: dict[str, str] = {}
        for other in sorted(active, key=lambda j: (j.created_at, j.id)):
            for image in other.images:
                readers.setdefault(posixpath.normpath(image.input), other.id)
        writers = {
            key: other.id
            for other in self.reference.values()
            if other.state in ACTIVE_JOB_STATES
            for key, _, _ in output_claims(other)
        }
        busy = [(i, out, writers[key]) for key, i, out in output_claims(job) if key in writers]
        read = [(i, out, readers[key]) for key, i, out in output_claims(job) if key in readers]
        try:
            first = self.store.create(copy.deepcopy(job), window=window)
        except OutputsBusy as refused:
            event("submit refused: an output is busy")
            assert busy and (refused.index, refused.output, refused.other_job) == busy[0]
            return
        except InputInUse as refused:
            event("submit refused: an output is an active job's input")
            assert not busy and read
            assert (refused.index, refused.output, refused.other_job) == read[0]
            return
        assert not busy and not read and first == job.first_window(window)
        job.next_index, job.changed_at = len(job.first_window(window)), job.created_at
        self.reference[job.id] = job

    def move(self, job_id: str, move: Move) -> None:
        """Make one step on the store and on the reference; their answers must agree."""
        got = self.store.step(job_id, move)
        expected, finished = apply_move(self.reference[job_id], move, self.clock.now, self.lost())
        event(f"started: {expected.started}")
        assert got == expected
        if finished and move.finish is not None:
            for name, increment in counter_increments(move.finish.error, move.finish.timings):
                self.counters[name] = self.counters.get(name, 0.0) + increment

    @rule(data=st.data(), max_attempts=st.integers(1, 3), held=st.none() | HOLDERS)
    def start(
        self, data: st.DataObject, max_attempts: int, held: tuple[str, int, int] | None
    ) -> None:
        """Start an image, as a task that was handed it does (or a test, with no holder)."""
        job_id = self.job_id(data)
        start = self.index(data, job_id)
        holder = None if held is None else Holder(held[0], held[1], start + held[2])
        self.move(job_id, Move(start=start, max_attempts=max_attempts, holder=holder))

    @precondition(lambda self: any(i.state == ImageState.RUNNING for j in self.reference.values() for i in j.images))  # fmt: skip
    @rule(data=st.data(), max_attempts=st.integers(1, 3), held=HOLDERS)
    def redeliver(self, data: st.DataObject, max_attempts: int, held: tuple[str, int, int]) -> None:
        """Start a running image again: a duplicate delivery, or a redelivery of a lost one."""
        job_id, index = data.draw(st.sampled_from(self.running()))
        holder = Holder(held[0], held[1], index + held[2])
        self.move(job_id, Move(start=index, max_attempts=max_attempts, holder=holder))

    @rule(node=st.sampled_from(NODES), pids=st.sets(st.sampled_from(PIDS)), late=st.booleans())
    def heartbeat(self, node: str, pids: set[int], late: bool) -> None:
        """Send a heartbeat, newer than the starts before it; late: its pids listed earlier."""
        self.clock.now += 0.5
        self.beat(node, Beat(self.clock.now - (0.75 if late else 0.0), tuple(sorted(pids))))

    def beat(self, node: str, beat: Beat) -> None:
        """Send a heartbeat to the store and the reference's, which forgets as the stores do."""
        self.store.heartbeat(node, beat)
        self.beats[node] = beat
        for other, old in list(self.beats.items()):
            if old.at < beat.at - FORGET_AFTER * STALE_AFTER:
                del self.beats[other]

    def held(self, data: st.DataObject) -> tuple[str, int, Holder]:
        """Draw a running image that has a holder: its job, index and holder."""
        held = [
            (job.id, n, image.holder)
            for job in self.reference.values()
            for n, image in enumerate(job.images)
            if image.holder is not None
        ]
        return data.draw(st.sampled_from(held))

    def reap_now(self, job_id: str, silence: bool) -> None:
        """Reap the job on the store and on the reference; their answers must agree."""
        got = self.store.redeliver_lost(job_id, silence=silence)
        expected = self.reference[job_id].redeliver_lost(self.lost(silence=silence), self.clock.now)
        assert got == expected

    @precondition(lambda self: any(i.holder for j in self.reference.values() for i in j.images))  # fmt: skip
    @rule(data=st.data(), silence=st.booleans())
    def kill_a_holder(self, data: st.DataObject, silence: bool) -> None:
        """Kill a holder's pool process: its node's next heartbeat leaves it out; then reap."""
        job_id, _, holder = self.held(data)
        self.clock.now += 0.5
        self.beat(holder.node, Beat(self.clock.now, tuple(p for p in PIDS if p != holder.pid)))
        self.reap_now(job_id, silence)

    @precondition(lambda self: any(i.holder for j in self.reference.values() for i in j.images))  # fmt: skip
    @rule(data=st.data(), seconds=st.sampled_from([40.0, 160.0]))
    def keep_a_holder_alive(self, data: st.DataObject, seconds: float) -> None:
        """Let time pass while a holder's node beats with its pid listed; then reap."""
        job_id, _, holder = self.held(data)
        self.clock.now += seconds
        self.beat(holder.node, Beat(self.clock.now, PIDS))
        self.reap_now(job_id, True)

    @precondition(lambda self: any(i.holder for j in self.reference.values() for i in j.images))  # fmt: skip
    @rule(data=st.data())
    def repeat_a_start(self, data: st.DataObject) -> None:
        """Start a running image again by its own holder, as a step retried after a timeout."""
        job_id, index, holder = self.held(data)
        self.move(job_id, Move(start=index, holder=holder))

    @rule(data=st.data(), timings=TIMINGS)
    def finish(self, data: st.DataObject, timings: list[tuple[str, float]]) -> None:
        """Record an image as written."""
        job_id = self.job_id(data)
        self.move(job_id, Move(finish=Finish(self.index(data, job_id), None, timings)))

    @rule(data=st.data(), error=st.sampled_from(["broken", "too large"]), timings=TIMINGS)
    def fail(self, data: st.DataObject, error: str, timings: list[tuple[str, float]]) -> None:
        """Record an image as failed."""
        job_id = self.job_id(data)
        self.move(job_id, Move(finish=Finish(self.index(data, job_id), error, timings)))

    @rule(
        data=st.data(),
        count=st.integers(1, 4),
        window=st.integers(1, 3),
        key=st.none() | st.integers(0, 3),
    )
    def claim(self, data: st.DataObject, count: int, window: int, key: int | None) -> None:
        """Take a job's next images for a task; a key made before answers what it took."""
        self.move(self.job_id(data), Move(claim=count, window=window, claim_key=key))

    @rule(data=st.data(), error=st.none() | st.just("broken"), spec=st.booleans(), claim=st.integers(0, 3), held=HOLDERS)  # fmt: skip
    def worker_step(
        self, data: st.DataObject, error: str | None, spec: bool, claim: int,
        held: tuple[str, int, int],
    ) -> None:  # fmt: skip
        """Finish an image, start the next and claim the next task in one step, as a task does."""
        job_id = self.job_id(data)
        finish = Finish(self.index(data, job_id), error, [("encode", 0.25)])
        start = self.index(data, job_id)
        holder = Holder(held[0], held[1], start + held[2])
        move = Move(finish=finish, start=start, holder=holder, claim=claim, window=2, spec=spec)
        self.move(job_id, move)

    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """Cancel a job: its queued images at once, its running ones when they finish."""
        job_id = self.job_id(data)
        got = self.store.cancel(job_id)
        self.reference[job_id].cancel(self.clock.now)
        assert got == self.reference[job_id]

    @rule(data=st.data(), silence=st.booleans(), after=st.sampled_from([0.0, 1.0, 60.0]))
    def reap(self, data: st.DataObject, silence: bool, after: float) -> None:
        """Queue again the running images whose holder is gone, as a reaper does after a while."""
        self.clock.now += after
        running = self.running()
        job_id = data.draw(st.sampled_from(running))[0] if running else self.job_id(data)
        self.reap_now(job_id, silence)

    @rule(index=st.integers(0, 3), error=st.none() | st.just("broken"), claim=st.integers(0, 3))
    def move_a_job_that_does_not_exist(self, index: int, error: str | None, claim: int) -> None:
        """Step, cancel or reap a job that does not exist (or expired): nothing happens."""
        move = Move(finish=Finish(index, error), start=index, claim=claim, spec=True)
        assert self.store.step("no-such-job", move) == missing_step(move)
        assert self.store.step("no-such-job", Move(claim=claim)) == missing_step(Move(claim=claim))
        assert self.store.cancel("no-such-job") is None
        assert self.store.redeliver_lost("no-such-job") == []

    @rule(seconds=st.sampled_from([0.5, 5.0, 30.0, 60.0]))
    def wait(self, seconds: float) -> None:
        """Let time pass: long enough, and silent holders are gone."""
        self.clock.now += seconds

    @invariant()
    def every_job_reads_as_the_reference(self) -> None:
        """Read every job, its peek, the listing and the stats: all as the reference."""
        for job_id, job in self.reference.items():
            assert self.store.get(job_id) == job
            assert self.store.peek(job_id) == Peek(
                job.version, job.finished, job.changed_at or job.created_at
            )
        newest_first = sorted(self.reference.values(), key=lambda j: j.created_at, reverse=True)
        listed = self.store.list_jobs(limit=100, offset=0)
        assert [j.id for j in listed] == [j.id for j in newest_first]
        for owner in OWNERS[1:]:
            mine = self.store.list_jobs(limit=100, offset=0, owner=owner)
            assert [j.id for j in mine] == [j.id for j in newest_first if j.owner == owner]
        by_state = {str(state): 0 for state in JobState}
        for job in self.reference.values():
            by_state[job.state] += 1
        assert self.store.stats() == stats_from_counters(by_state, self.counters)
        assert self.store.workers() == self.beats
        for silence in (True, False):
            lost = self.lost(silence=silence)
            expected = [
                job.id
                for job in self.reference.values()
                if any(i.state == ImageState.RUNNING and lost(i) for i in job.images)
            ]
            assert sorted(self.store.lost_jobs(silence=silence)) == sorted(expected)


def run_model(open_store: OpenStore) -> None:
    """Run the machine's random sequences against stores that open_store makes."""
    run_state_machine_as_test(lambda: StoreMachine(open_store), settings=MODEL_SETTINGS)


def test_the_sqlite_store_keeps_to_the_reference(tmp_path: Path) -> None:
    run_model(
        lambda clock: SqliteJobStore(
            tmp_path / f"{uuid.uuid4().hex}.sqlite3",
            ttl=TTL,
            stale_after=STALE_AFTER,
            time_limit=TIME_LIMIT,
            clock=clock,
            admission=ADMISSION,
        )
    )


def test_the_redis_store_on_fakeredis_keeps_to_the_reference() -> None:
    run_model(
        lambda clock: RedisJobStore(
            fakeredis.FakeRedis(),
            ttl=TTL,
            stale_after=STALE_AFTER,
            time_limit=TIME_LIMIT,
            clock=clock,
            admission=ADMISSION,
        )
    )


def test_the_redis_store_on_a_real_redis_keeps_to_the_reference(redis_url: str) -> None:
    def on_an_empty_redis(clock: Clock) -> JobStore:
        client = redis.Redis.from_url(redis_url)
        client.flushdb()
        return RedisJobStore(
            client,
            ttl=TTL,
            stale_after=STALE_AFTER,
            time_limit=TIME_LIMIT,
            clock=clock,
            admission=ADMISSION,
        )

    run_model(on_an_empty_redis)
