"""One way to reach Temporal: the pydantic data converter on every client, TLS when set."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import TLSConfig

from landflow.settings import Settings


def tls_config(settings: Settings) -> TLSConfig | bool:
    """mTLS to a frontend that requires it (docker-compose.yml); plain on the dev server."""
    if not settings.temporal_tls_ca:
        return False
    return TLSConfig(
        server_root_ca_cert=settings.temporal_tls_ca.read_bytes(),
        client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
        client_private_key=settings.temporal_tls_key.read_bytes()
        if settings.temporal_tls_key
        else None,
    )


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
        tls=tls_config(settings),
    )


def prometheus_runtime(host: str, port: int) -> Runtime:
    """A runtime whose SDK metrics (workers, polls, task latencies) Prometheus scrapes at
    http://host:port/metrics."""
    telemetry = TelemetryConfig(metrics=PrometheusConfig(bind_address=f"{host}:{port}"))
    return Runtime(telemetry=telemetry)
