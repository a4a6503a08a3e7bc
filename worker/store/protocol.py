"""What a job store is: the protocol every back end keeps, and the values it takes and gives.

The transitions themselves are ``worker.jobs.Job``'s (the reference state machine);
``apply_move`` composes them into one step. The SQLite store runs exactly that in a
transaction; the Redis store's Lua scripts do the same, and
tests/worker/test_store_model.py holds every store to the reference.
"""

from __future__ import annotations

import posixpath
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from worker.jobs import Job, Lost, Start
from worker.liveness import Beat, Holder
from worker.store.metrics import Stats

if TYPE_CHECKING:
    from worker.settings import Settings


@dataclass(frozen=True)
class Admission:
    """What JobStore.create checks beyond one writer per output, from the settings."""

    max_active: int | None = None
    """Queued or running jobs one owner may have (None: no limit; anonymous jobs: none)."""
    inputs_shared: bool = True
    """Whether outputs and inputs share one root: then no output may be an active job's input.

    With separate roots an output can never be an input (the API refuses outputs under the
    input root), and the same name in each root names two files.
    """

    @classmethod
    def of(cls, settings: Settings) -> Admission:
        """Return what the settings ask the store to check at creation."""
        return cls(max_active=settings.max_active_jobs, inputs_shared=not settings.separate_roots)


@dataclass(frozen=True)
class Finish:
    """A running image's outcome, to record."""

    index: int
    error: str | None = None
    timings: list[tuple[str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Move:
    """What one ``JobStore.step`` does to a job, in this order: finish, start, claim, spec."""

    finish: Finish | None = None
    """Record a running image as succeeded (no error) or failed, with its step times."""
    start: int | None = None
    """Mark this image running and count the attempt, unless it must not run."""
    holder: Holder | None = None
    """Who starts it: kept on the image while it runs (see worker.liveness)."""
    max_attempts: int = 3
    """Attempts after which a started image gives up instead (see Job.start_image)."""
    claim: int = 0
    """Take up to this many images for the job's next task (see Job.claim_next)."""
    window: int = 1
    """How many tasks share the job's tail (see Job.claim_next)."""
    claim_key: int | None = None
    """The claim's key, the first image of the task that claims: a claim made again with it
    (a retry whose answer was lost, a redelivered task) answers the images it took then."""
    spec: bool = False
    """Read the job as it was created."""


@dataclass(frozen=True)
class Step:
    """What one ``JobStore.step`` did."""

    started: Start | None
    """The decision on the image asked to start; None when none was."""
    claimed: range
    """The images of the job's next task; empty when none was asked for or none is left."""
    spec: Job | None
    """The job as it was created, when asked for and the job exists."""
    attempt: int = 0
    """The attempts of the image asked to start, this one included (a retry: above 1)."""


@dataclass(frozen=True)
class Peek:
    """What a long-poll needs to know of a job before it waits: a few fields, not the job."""

    version: int
    finished: bool
    changed_at: float


def apply_move(job: Job, move: Move, now: float, lost: Lost) -> tuple[Step, bool]:
    """Apply a move to the reference job; return the step and whether an image was finished.

    lost tells whether the holder of a running image asked to start is gone.
    """
    finished = move.finish is not None and job.finish_image(
        move.finish.index, error=move.finish.error, now=now
    )
    started = None
    if move.start is not None:
        started = job.start_image(
            move.start, max_attempts=move.max_attempts, now=now, holder=move.holder, lost=lost
        )
    claimed = (
        job.claim_next(count=move.claim, window=move.window, key=move.claim_key)
        if move.claim > 0
        else range(0)
    )
    attempt = 0 if move.start is None or started == "skip" else job.images[move.start].attempts
    spec = Job.from_spec(job.spec()) if move.spec else None
    return Step(started, claimed, spec, attempt), finished


def missing_step(move: Move) -> Step:
    """Return what a step of a job that does not exist (or expired) did: nothing."""
    return Step(None if move.start is None else Start.SKIP, range(0), None)


def output_claims(job: Job) -> list[tuple[str, int, str]]:
    """Return (key, image index, output) for each of the job's outputs, in order.

    The key is the path as written, normalised (``./a//b.png`` is ``a/b.png``): two
    jobs that name one file the same way collide. Spellings that only the file system
    makes one (an absolute path inside the root, a symlink) are not matched.
    """
    return [
        (posixpath.normpath(output), index, output)
        for index, image in enumerate(job.images)
        for output in image.outputs
    ]


UNLIMITED = Admission()
"""No limit on an owner's active jobs; outputs kept off active inputs (shared roots)."""


def input_claims(job: Job) -> list[str]:
    """Return the job's inputs, normalised as output_claims keys them, without repeats."""
    return list(dict.fromkeys(posixpath.normpath(image.input) for image in job.images))


def token_bucket(
    tokens: float, at: float, now: float, rate: float, burst: int
) -> tuple[float, float]:
    """Return (tokens left, seconds to wait) after one submission asks for a token.

    The bucket holds up to burst tokens and gains rate a second; a submission takes one,
    or waits (taking none) for the next.
    """
    tokens = min(float(burst), tokens + max(0.0, now - at) * rate)
    if tokens >= 1.0:
        return tokens - 1.0, 0.0
    return tokens, (1.0 - tokens) / rate


class JobStore(Protocol):
    """What the API and the workers ask of a job store."""

    def ping(self) -> None:
        """Raise StoreUnavailable unless the back end answers."""

    def create(self, job: Job, *, window: int) -> list[int]:
        """Store a new job and claim its first window of images (their indices) to enqueue.

        Storing nothing, raise TooManyActive when the job's owner has as many queued or
        running jobs as the store's Admission allows; then OutputsBusy when one of its
        outputs is an output of a job that is queued or running (one writer per output);
        then, with shared roots, InputInUse when one is the input of such a job.
        """

    def get(self, job_id: str) -> Job | None:
        """Return the job as stored, or None when there is no such job (or it expired).

        A read changes nothing: the workers' reapers keep the record true (see
        worker.heartbeat), so a job whose workers are all gone waits for the next one.
        """

    def list_jobs(self, *, limit: int, offset: int, owner: str | None = None) -> list[Job]:
        """Return recent jobs, newest first: every job, or only owner's when given."""

    def admit(self, owner: str, *, rate: float, burst: int) -> float:
        """Take a submission token from owner's bucket; return 0, or seconds to wait first.

        The bucket (see token_bucket) lives in the store: it holds across API processes.
        """

    def step(self, job_id: str, move: Move) -> Step:
        """Move a job along in one atomic change (one round trip): see Move."""

    def cancel(self, job_id: str) -> Job | None:
        """Cancel the job's images that have not started; return the job (None if unknown)."""

    def heartbeat(self, node: str, beat: Beat) -> None:
        """Record a worker node's heartbeat (see worker.liveness), over its previous one."""

    def workers(self) -> dict[str, Beat]:
        """Return the last heartbeat of each worker node heard within stale_after or so."""

    def lost_jobs(self, *, silence: bool = True) -> list[str]:
        """Return the ids of the jobs with a running image whose holder looks gone.

        A read of the running images and the heartbeats alone, whatever the number of
        jobs kept; redeliver_lost then decides, atomically (see its silence).
        """

    def redeliver_lost(self, job_id: str, *, silence: bool = True) -> list[range]:
        """Queue again the job's running images whose holder is gone; return their tasks.

        The caller publishes them (see Job.redeliver_lost). The store judges by its clock
        and stale_after; silence: whether a holder unheard of for stale_after is gone (see
        Liveness.silence). Atomic: of two reapers, one gets the tasks.
        """

    def peek(self, job_id: str) -> Peek | None:
        """Return the job's version, whether it is finished and when it last changed."""

    def following(self, job_id: str) -> AbstractContextManager[None]:
        """Follow the job's changes from now on (before creating it), for a wait inside.

        Such a wait needs no read of the job to learn what changed before it began.
        """

    def wait(self, job_id: str, *, version: int, timeout: float, coalesce: float = 0.0) -> None:
        """Return once the job's version differs from version, or after timeout seconds.

        With coalesce, a change that leaves the job unfinished answers only once coalesce
        seconds have passed since the call (later changes join it); a finished job, or a
        missing one, answers at once.
        """

    def stats(self) -> Stats:
        """Return counts of jobs by state, images by outcome, and operation times.

        Its cost does not grow with the number of jobs kept.
        """
