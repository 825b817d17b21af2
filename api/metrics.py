"""Prometheus metrics of the API: requests and latency by route template and status, and
parcels by stage read from the registry at scrape time.

Each app has its own CollectorRegistry (not the process-global default), so several apps
in one process (tests) never clash over metric names.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from fastapi import FastAPI
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from landflow.vocabulary import Stage
from registry import queries

log = logging.getLogger("landflow.metrics")
UNMATCHED = "unmatched"  # no route: one label for every unknown path, never the raw path
LABELS = ("method", "route", "status")


class ParcelsByStage(Collector):
    """`landflow_parcels{stage=...}`: every stage, zero included, so the series never vanish."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        try:
            with Session(self.engine) as session:
                counts = queries.count_by_stage(session)
        except SQLAlchemyError:
            log.warning("parcels by stage left out of /metrics: the registry is unreachable")
            return
        family = self._family()
        for stage in [*Stage, *sorted(set(counts) - set(Stage))]:
            family.add_metric([str(stage)], counts.get(str(stage), 0))
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "landflow_parcels", "Parcels in the registry by stage", labels=["stage"]
        )


class ApiMetrics:
    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "landflow_http_requests",
            "HTTP requests answered, by method, route template and status",
            LABELS,
            registry=self.registry,
        )
        self.latency = Histogram(
            "landflow_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status",
            LABELS,
            registry=self.registry,
        )
        self.registry.register(ParcelsByStage(engine))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method, route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class RequestMetrics:
    """Plain ASGI middleware: the status is the one actually sent, the route is the template
    the router matched (`/parcels/{parcel_id}`), so label values stay few."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.observe(scope["method"], route, status, time.perf_counter() - started)


def install(app: FastAPI) -> None:
    """Count every request (outermost middleware) and keep the metrics on app.state."""
    app.state.metrics = ApiMetrics(app.state.engine)
    app.add_middleware(RequestMetrics, metrics=app.state.metrics)
