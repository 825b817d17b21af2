"""Liveness, readiness and Prometheus metrics of the API, and the worker's SDK metrics.

Readiness is checked against real failures: a Temporal address where nothing listens,
and a database file that cannot be opened.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from landflow import registry
from landflow.settings import Settings
from landflow.worker import run_worker
from tests.conftest import make_settings
from tests.helpers import auth, clean_facts, start


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Prometheus text -> {sorted labels: value} for one sample name."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def client_for(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://landflow")


@pytest_asyncio.fixture
async def unreachable_temporal(tmp_path) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, temporal_address=f"127.0.0.1:{free_port()}")
    async with client_for(create_app(settings)) as client:
        yield client


async def test_healthz_answers_while_the_process_lives(unreachable_temporal):
    response = await unreachable_temporal.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_200_when_temporal_and_the_database_answer(api):
    response = await api.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "temporal": "ok"}}


async def test_readyz_is_503_naming_temporal_when_it_is_unreachable(unreachable_temporal):
    response = await unreachable_temporal.get("/readyz")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["failing"] == ["temporal"] and body["checks"]["database"] == "ok"
    assert body["error"] == "NotReady" and "temporal" in body["detail"]


async def test_readyz_is_503_naming_the_database_when_it_cannot_be_opened(temporal, tmp_path):
    app = create_app(make_settings(tmp_path))
    app.state.temporal = temporal.client
    app.state.engine = registry.make_engine(f"sqlite:///{tmp_path / 'gone' / 'registry.db'}")
    async with client_for(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["failing"] == ["database"] and body["checks"]["temporal"] == "ok"
    assert body["checks"]["database"].startswith("unreachable")


async def test_metrics_count_requests_by_route_template_and_status(api, pid):
    await api.get(f"/parcels/{pid}", headers=auth("auditor"))  # 404: not started
    await api.get("/no/such/page")
    await start(api, clean_facts(pid))
    await api.get(f"/parcels/{pid}", headers=auth("auditor"))
    response = await api.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    requests = samples(response.text, "landflow_http_requests_total")
    one = (("method", "GET"), ("route", "/parcels/{parcel_id}"))
    assert requests[(*one, ("status", "200"))] >= 1
    assert requests[(*one, ("status", "404"))] >= 1
    assert requests[(("method", "POST"), ("route", "/parcels"), ("status", "201"))] >= 1
    assert requests[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] >= 1
    assert not any(pid in str(labels) for labels in requests)  # templates, never raw paths
    latency = samples(response.text, "landflow_http_request_duration_seconds_count")
    assert latency[(*one, ("status", "200"))] >= 1


async def test_metrics_gauge_parcels_by_stage(api, pid):
    def parcels(text: str) -> dict[str, float]:
        return {dict(k)["stage"]: v for k, v in samples(text, "landflow_parcels").items()}

    before = parcels((await api.get("/metrics")).text)
    assert before.keys() >= {"intake", "filing", "release", "released"}  # zeros included
    started = await start(api, clean_facts(pid))
    assert started["stage"] == "release"
    after = parcels((await api.get("/metrics")).text)
    assert after["release"] == before["release"] + 1


async def test_the_worker_exports_sdk_metrics_on_its_port(temporal, tmp_path):
    port = free_port()
    settings: Settings = make_settings(
        tmp_path,
        temporal_address=temporal.client.service_client.config.target_host,
        worker_metrics_port=port,
        worker_metrics_host="127.0.0.1",
    )
    worker = asyncio.create_task(run_worker(settings))
    try:
        text = ""
        async with httpx.AsyncClient() as http:
            for _ in range(100):
                try:
                    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.TransportError:
                    text = ""
                if "temporal_num_pollers" in text or worker.done():
                    break
                await asyncio.sleep(0.1)
        assert not worker.done(), worker.exception()
        assert "temporal_num_pollers" in text, text[:2000]
        assert settings.task_queue in text
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
