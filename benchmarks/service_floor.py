"""imgserve's own work for a one-image job, with no queue, no hand-off and no HTTP.

Run as a process of its own with imgserve's environment (``REDIS_URL``, ``IMGSERVE_ROOT``):
``python -m benchmarks.service_floor COUNT``. It times, warm and one after another,
the steps every one-image job takes that an empty Celery task does not: the API's
validation and job record (the tasks' messages left out), the worker's start, the image
with its fsynced write, the finish, and the API's read of the finished job. It prints
the medians as JSON, in ms.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import pipeline
from app.job_service import new_job
from benchmarks.service_throughput import tiny_job
from worker.memory import keep_large_allocations
from worker.settings import Settings
from worker.store import Finish, JobStore, Move, open_store
from worker.tasks import run_image

STEPS = ("validate", "create", "start", "image", "finish", "read")


def main(count: int) -> dict[str, float]:
    """Time count one-image jobs of the 64x64 JPEG step by step; return medians in ms."""
    pipeline.configure_opencv(1)  # as in a worker process
    keep_large_allocations()
    settings = Settings.from_env()
    store = open_store(settings)
    times = [one_job(settings, store, n) for n in range(count + 20)]
    medians = {step: statistics.median(t[step] for t in times[20:]) for step in STEPS}
    return {**medians, "all": sum(medians.values())}


def one_job(settings: Settings, store: JobStore, n: int) -> dict[str, float]:
    """Take one job through imgserve's steps; return each step's time in ms."""
    clock = [time.perf_counter()]
    job = new_job(tiny_job(f"out/floor/{n}.jpg"), settings)
    clock.append(time.perf_counter())
    store.create(job, window=1)
    clock.append(time.perf_counter())
    spec = store.step(job.id, Move(start=0, spec=True)).spec
    clock.append(time.perf_counter())
    error, timings = run_image(spec or job, 0, settings)
    clock.append(time.perf_counter())
    store.step(job.id, Move(finish=Finish(0, error, timings), claim=1))
    clock.append(time.perf_counter())
    final = store.get(job.id)
    answer = final.to_json() if final is not None else {}
    clock.append(time.perf_counter())
    if answer.get("state") != "succeeded":
        raise RuntimeError(f"the floor's job did not succeed: {answer}")
    return {step: 1000 * (b - a) for step, a, b in zip(STEPS, clock[:-1], clock[1:], strict=True)}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
