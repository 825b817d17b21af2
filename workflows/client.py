"""One way to reach Temporal, with the pydantic data converter on every client."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from landflow.settings import Settings


def workflow_id(parcel_id: str) -> str:
    return f"parcel-{parcel_id}"


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
    )


def prometheus_runtime(host: str, port: int) -> Runtime:
    """A runtime whose SDK metrics (workers, polls, task latencies) Prometheus scrapes at
    http://host:port/metrics."""
    telemetry = TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}"))
    return Runtime(telemetry=telemetry)
