"""The API process's own metrics: HTTP requests by route template, their durations, those in
flight, and the process itself (prometheus_client's process, platform and GC collectors).

They count what this API process answered, over all its waitress threads; several API
processes (replicas) count each their own, which Prometheus adds up across its targets.
"""

from __future__ import annotations

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds: the 30 s bucket holds long-polls (``?wait=`` is at most 30 s)."""
UNMATCHED = "unmatched"
"""The route of a request no route matched (a 404 or 405), so that paths make no labels."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted by name; any other a client sends is counted as "other"."""
PER_PROCESS = "Counted by this API process (all its threads)."


class HttpMetrics:
    """Count one app's requests in a registry of its own, beside the process collectors."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "http_requests",
            f"HTTP requests answered, by method, route template and status. {PER_PROCESS}",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            f"Time from a request's arrival to its answer, by method and route. {PER_PROCESS}",
            ["method", "route"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "http_requests_in_flight",
            f"HTTP requests being answered now. {PER_PROCESS}",
            registry=self.registry,
        )
        # The default registry's collectors read this process (/proc, the interpreter, gc).
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """Count an answered request; route is its template, None when no route matched."""
        template = route or UNMATCHED
        known = method if method in METHODS else "other"
        self.requests.labels(known, template, str(status)).inc()
        self.duration.labels(known, template).observe(seconds)
