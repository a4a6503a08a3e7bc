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

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from app.backends import backends
from app.errors import ServiceUnavailable
from app.http_metrics import HttpMetrics
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
    """Answer the service's and this API process's metrics (503 if the store is down).

    In the Prometheus text format, or OpenMetrics when the scraper's Accept asks for it.
    """
    found = backends()
    try:
        stats = found.store.stats()
    except StoreUnavailable as exc:
        raise ServiceUnavailable(f"the job store does not answer: {exc}") from None
    own: HttpMetrics = current_app.extensions["imgserve.metrics"]
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    body = encode(Scrape(own.registry, StoreCollector(stats, found.queue.depth)))
    # content_type, not mimetype: Flask would add a second charset to the encoder's own.
    return Response(body, content_type=content_type)


class Scrape:
    """The collectors of one scrape, collected in turn."""

    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[Metric]:
        """Yield every collector's metrics."""
        for collector in self.collectors:
            yield from collector.collect()


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
