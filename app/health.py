"""Operational endpoints: /healthz for load balancers, /metrics for Prometheus."""

from __future__ import annotations

import logging
from collections.abc import Iterator

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

from app.errors import ServiceUnavailable
from app.services import Services, services
from worker.state_folder import disk_problem
from worker.store import BUCKETS

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """Answer 200 when the job store and the broker answer (and the state folder has room)."""
    found = services()
    checks, failures = {}, []
    for part, name, check in (
        ("store", "the job store", found.store.ping),
        ("broker", "the broker", found.broker_ping),
    ):
        try:
            check()
            checks[part] = "ok"
        except Exception as exc:
            checks[part] = f"{name} does not answer ({exc})"
            failures.append(checks[part])
    if found.settings.embedded:
        checks["state_disk"] = disk_problem(found.settings.state_dir) or "ok"
        if checks["state_disk"] != "ok":
            failures.append(checks["state_disk"])
    if failures:
        raise ServiceUnavailable("; ".join(failures), extensions={"checks": checks})
    mode = "embedded" if found.settings.embedded else "redis"
    return {"status": "ok", "mode": mode, **checks}


@bp.get("/metrics")
def metrics() -> ResponseReturnValue:
    """Answer the service's metrics in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(services()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


class StoreCollector:
    """Metrics read from the job store and the broker at scrape time."""

    def __init__(self, found: Services) -> None:
        self.services = found

    def collect(self) -> Iterator[Metric]:
        """Yield jobs by state, images by outcome, operation times and queue depth."""
        stats = self.services.store.stats()
        jobs = GaugeMetricFamily(
            "imgserve_jobs", "Jobs kept in the store, by state.", labels=["state"]
        )
        for state, count in stats.jobs.items():
            jobs.add_metric([state], count)
        yield jobs
        images = CounterMetricFamily(
            "imgserve_images_processed", "Images processed, by outcome.", labels=["outcome"]
        )
        for outcome, count in stats.images.items():
            images.add_metric([outcome], count)
        yield images
        seconds = HistogramMetricFamily(
            "imgserve_operation_seconds",
            "Time of each pipeline step (decode, operations, encode).",
            labels=["operation"],
        )
        for op, times in sorted(stats.operations.items()):
            cumulative, running = [], 0
            for bound, count in zip(BUCKETS, times.buckets, strict=True):
                running += count
                cumulative.append((repr(bound), running))
            cumulative.append(("+Inf", times.count))
            seconds.add_metric([op], cumulative, sum_value=times.total)
        yield seconds
        try:
            depth = self.services.queue_depth()
        except Exception as exc:
            log.warning("queue depth unavailable: %s", exc)
            return
        yield GaugeMetricFamily(
            "imgserve_queue_depth", "Image tasks waiting in the broker's queue.", value=depth
        )
