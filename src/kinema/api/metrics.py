"""Prometheus metrics at /metrics: queue depth per state, live workers, task durations, failures, HTTP.

Queue depth is read from the task store when Prometheus scrapes (so it is right across processes);
task durations and failures are observed by whoever sees tasks finish in this process (in-process
workers report through `observe_task`). Each app has its own registry, so tests can build many apps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kinema.api.catalog import Catalog
from kinema.jobs import STATUSES, Task, TaskStore


class _QueueCollector(Collector):
    def __init__(self, store: TaskStore, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily("kinema_tasks", "Tasks per status (all accounts)", labels=["status"])
        counts = self.store.counts_by_status()
        for status in STATUSES:
            depth.add_metric([status], counts.get(status, 0))
        yield depth
        yield GaugeMetricFamily(
            "kinema_workers_live", "Workers seen within the online window", value=self.catalog.live_workers()
        )


class Metrics:
    def __init__(self, store: TaskStore, catalog: Catalog) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_QueueCollector(store, catalog))
        self.requests = Counter(
            "kinema_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "kinema_http_request_seconds", "HTTP request latency", ["route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )  # fmt: skip
        self.durations = Histogram(
            "kinema_task_seconds", "Task run time from start to finish", ["kind", "status"],
            registry=self.registry, buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
        )  # fmt: skip
        self.failures = Counter(
            "kinema_task_failures", "Tasks that ended failed", ["kind"], registry=self.registry
        )

    def observe_task(self, task: Task) -> None:
        """Record a finished task (call on every status change; unfinished ones are ignored)."""
        if not task.finished:
            return
        if task.started_at is not None and task.finished_at is not None:
            seconds = (task.finished_at - task.started_at).total_seconds()
            self.durations.labels(task.kind, task.status).observe(max(seconds, 0.0))
        if task.status == "failed":
            self.failures.labels(task.kind).inc()


class MetricsMiddleware:
    """Counts requests and their latency per route template (never per raw path: ids would explode it)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = [500]

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(scope["method"], template, str(status[0])).inc()
            self.metrics.latency.labels(template).observe(time.perf_counter() - start)
