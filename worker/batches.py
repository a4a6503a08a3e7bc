"""One task's batch of images: run each in turn, record it, then publish the job's next task.

A plain function of a ``Recorder`` (the task's store and broker) and settings, so it is
tested without Celery. Each image is started and finished in the store on its own, so a
task that dies halfway is redelivered and redoes only the images it had not finished.
"""

from __future__ import annotations

import time

from celery.exceptions import SoftTimeLimitExceeded

from worker.images import PreparedJob, run_image
from worker.jobs import Start
from worker.lru import LRU
from worker.outages import Recorder
from worker.scheduling import batch_size, should_hand_off
from worker.settings import Settings
from worker.store import Finish

JOBS_KEPT = 64
"""Jobs a worker process keeps prepared: a spec never changes, and jobs can be large."""

_prepared: LRU[str, PreparedJob] = LRU(JOBS_KEPT)


def run_batch(
    recorder: Recorder, settings: Settings, batch: range, *, share: int | None = None
) -> list[Start]:
    """Run a task's images in turn, record each, then publish the job's next task.

    One store round trip an image: finishing one image starts the next, finishing the
    last claims the job's next task: as many images as fit in IMGSERVE_BATCH_MS, and at
    most 1/share of those left (see worker.scheduling.guided_share).
    """
    share = share or settings.job_window
    decisions: list[Start] = []
    seconds: list[float] = []
    began = time.perf_counter()
    prepared = _prepared.get(recorder.job_id)
    step = recorder.step(start=batch.start, spec=prepared is None)
    if prepared is None and step.spec is not None:
        prepared = PreparedJob(step.spec, settings)
        _prepared.put(recorder.job_id, prepared)
    finish = None
    rest = range(0)  # images handed to a new task, which then stands for the job's next
    index = batch.start
    try:
        for index in batch:
            decision = step.started or Start.SKIP
            decisions.append(decision)
            finish = None
            if decision == "run" and prepared is not None:
                started = time.perf_counter()
                error, timings = run_image(prepared, index, settings, retry=step.attempt > 1)
                seconds.append(time.perf_counter() - started)
                finish = Finish(index, error, timings)
                if index + 1 < batch.stop and should_hand_off(began, error, settings):
                    rest = range(index + 1, batch.stop)
                    break
            if index + 1 < batch.stop:
                step = recorder.step(finish=finish, start=index + 1)
    except SoftTimeLimitExceeded:  # between two images: the next task redoes this one
        rest = range(index, batch.stop)
    claim = 0 if rest else batch_size(seconds, settings)
    step = recorder.step(finish=finish, claim=claim, window=share, claim_key=batch.start)
    if rest:
        recorder.publish(rest)
    if step.claimed:
        recorder.publish(step.claimed)
    return decisions


def finish_killed(recorder: Recorder, batch: range, error: str, window: int) -> None:
    """Fail the image of batch a killed process was running; hand on the images after it.

    Its task's images before it are finished; the new task stands for the job's next, so
    the window keeps its size.
    """
    for index in batch:
        recorder.step(finish=Finish(index, error))  # only the running one changes
    job = recorder.read()
    rest = [n for n in batch if job is not None and job.images[n].state == "queued"]
    if rest:
        recorder.publish(range(rest[0], rest[-1] + 1))
        return
    following = recorder.step(claim=1, window=window, claim_key=batch.start).claimed
    if following:
        recorder.publish(following)
