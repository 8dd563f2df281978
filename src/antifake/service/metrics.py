"""Prometheus metrics, on a registry per app (so several apps in one process don't clash)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class _QueueCollector(Collector):
    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def collect(self) -> Iterable[GaugeMetricFamily]:
        g = GaugeMetricFamily("antifake_jobs", "Jobs by status (queued = queue depth)",
                              labels=["status"])
        try:
            for status, n in self._counts().items():
                g.add_metric([status], n)
        except Exception:  # a scrape must not fail because the database is down
            pass
        yield g


class ServiceMetrics:
    def __init__(self, queue_counts: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("antifake_http_requests_total", "HTTP requests",
                                ["method", "route", "status"], registry=r)
        self.latency = Histogram("antifake_http_request_duration_seconds", "HTTP latency",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=r)
        self.detector_seconds = Histogram(
            "antifake_detector_duration_seconds", "Time per detector per file (elapsed_ms)",
            ["detector"], buckets=LATENCY_BUCKETS, registry=r)
        self.analyses = Counter("antifake_analyses_total", "Files analysed, by outcome",
                                ["outcome"], registry=r)
        self.worker_restarts = Counter("antifake_worker_restarts_total",
                                       "Analysis processes killed and replaced", ["reason"],
                                       registry=r)
        r.register(_QueueCollector(queue_counts))

    def observe_result(self, result: dict[str, Any]) -> None:
        """Per-detector time and outcome from an ``AnalysisResult.to_dict()``."""
        err = result.get("error")
        self.analyses.labels("error" if err else str(result.get("verdict"))).inc()
        for d in result.get("detectors") or []:
            self.detector_seconds.labels(d.get("detector", "?")).observe(
                float(d.get("elapsed_ms") or 0.0) / 1000.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Counts and times every HTTP request by route template (not raw path: bounded labels)."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # Route templates keep label cardinality bounded; requests refused before
            # routing (401/413/429) or for static files have no route.
            route = scope.get("route")
            template = getattr(route, "path", None) or (
                "/v1 (refused)" if scope.get("path", "").startswith("/v1/") else "other")
            method = scope.get("method", "?")
            self.metrics.requests.labels(method, template, str(status["code"])).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
