"""Operational endpoints: /healthz for load balancers, /metrics for Prometheus.

/healthz asks every part at once and answers within HEALTH_TIMEOUT whatever they do: a part
that has not answered by then is down (a frozen Redis accepts connections and never
answers). Its 503 names each part that is down, with a ``checks`` member for every part.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from flask import Blueprint, Response
from flask.typing import ResponseReturnValue
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from app.backends import backends
from app.errors import ServiceUnavailable
from worker.state_folder import disk_problem
from worker.store import BUCKETS, Stats, StoreUnavailable

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)

HEALTH_TIMEOUT = 1.5
"""Seconds /healthz waits for the parts to answer, so that it answers within 2 s."""
OK = "ok"


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Answer 200 when the store and the broker answer (and the state folder has room).

    Otherwise a 503 names each part that is down.
    """
    found = backends()
    checks = run_checks(
        {
            "store": ("the job store", found.store.ping),
            "broker": ("the broker", found.queue.ping),
        },
        timeout=HEALTH_TIMEOUT,
    )
    if found.settings.embedded:
        checks["state_disk"] = disk_problem(found.settings.state_dir) or OK
    failing = [sentence for sentence in checks.values() if sentence != OK]
    if failing:
        raise ServiceUnavailable("; ".join(failing), checks=checks)
    mode = "embedded" if found.settings.embedded else "redis"
    return {"status": OK, "mode": mode, **checks}


def run_checks(
    parts: dict[str, tuple[str, Callable[[], None]]], *, timeout: float
) -> dict[str, str]:
    """Run each part's check side by side; return "ok" or a sentence on what is wrong, a part.

    A check still running after timeout seconds is left to finish on its own thread (the
    store's and the broker's socket timeouts end it) and reported as not answering.
    """
    answers: dict[str, str] = {}

    def check(name: str, what: str, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception as exc:
            answers[name] = f"{what} does not answer ({exc})"
        else:
            answers[name] = OK

    threads = [
        threading.Thread(target=check, args=(name, what, call), name=f"healthz-{name}", daemon=True)
        for name, (what, call) in parts.items()
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    late = f"does not answer within {timeout:g} s"
    return {name: answers.get(name, f"{what} {late}") for name, (what, _) in parts.items()}


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    """Answer the service's metrics in the Prometheus text format (503 if the store is down)."""
    found = backends()
    try:
        stats = found.store.stats()
    except StoreUnavailable as exc:
        raise ServiceUnavailable(f"the job store does not answer: {exc}") from None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(stats, found.queue.depth))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class StoreCollector:
    """Metrics read from the job store and the broker at scrape time."""

    def __init__(self, stats: Stats, queue_depth: Callable[[], int]) -> None:
        self.stats = stats
        self.queue_depth = queue_depth

    def collect(self) -> Iterator[Metric]:
        """Yield jobs by state, images by outcome, operation times and queue depth."""
        jobs = GaugeMetricFamily(
            "imgserve_jobs", "Jobs kept in the store, by state.", labels=["state"]
        )
        for state, count in self.stats.jobs.items():
            jobs.add_metric([state], count)
        yield jobs
        images = CounterMetricFamily(
            "imgserve_images_processed", "Images processed, by outcome.", labels=["outcome"]
        )
        for outcome, count in self.stats.images.items():
            images.add_metric([outcome], count)
        yield images
        seconds = HistogramMetricFamily(
            "imgserve_operation_seconds",
            "Time of each pipeline step (decode, operations, encode).",
            labels=["operation"],
        )
        for op, times in sorted(self.stats.operations.items()):
            cumulative, running = [], 0
            for bound, count in zip(BUCKETS, times.buckets, strict=True):
                running += count
                cumulative.append((repr(bound), running))
            cumulative.append(("+Inf", times.count))
            seconds.add_metric([op], cumulative, sum_value=times.total)
        yield seconds
        try:
            depth = self.queue_depth()
        except Exception as exc:
            log.warning("queue depth unavailable: %s", exc)
            return
        yield GaugeMetricFamily(
            "imgserve_queue_depth", "Image tasks waiting in the broker's queue.", value=depth
        )
