"""Liveness, readiness and Prometheus metrics of the API, and the worker's SDK metrics.

Readiness is checked against real failures, each in an app of its own beside the
session's: a registry of the old shape, which migration 0003 marks as due a rebuild, and
a Temporal address where nothing listens.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from landflow.settings import Settings
from registry import writes
from registry.engine import make_engine
from registry.migrate import upgrade
from service.worker import build_worker
from tests.conftest import make_settings
from tests.helpers import auth, clean_facts, start
from tests.integration.registry.test_migrations import insert_old_rows
from workflows.client import connect, prometheus_runtime

Labels = tuple[tuple[str, str], ...]


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def samples(text: str, name: str) -> dict[Labels, float]:
    """Prometheus text -> {sorted labels: value} for one sample name."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


async def scrape(api: httpx.AsyncClient) -> str:
    response = await api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def own_client(settings: Settings, temporal: WorkflowEnvironment | None) -> httpx.AsyncClient:
    app = create_app(settings)
    if temporal is not None:
        app.state.temporal = temporal.client
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://landflow")


@pytest_asyncio.fixture
async def unreachable_temporal(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """An app whose LANDFLOW_TEMPORAL_ADDRESS is a port nothing listens on, and that address."""
    settings = make_settings(tmp_path, temporal_address=f"127.0.0.1:{free_port()}")
    async with own_client(settings, None) as client:
        yield client, settings.temporal_address


async def test_healthz_answers_while_the_process_lives(api, unreachable_temporal):
    for client in (api, unreachable_temporal[0]):
        response = await client.get("/healthz")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_200_when_every_part_answers(api):
    response = await api.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "registry": "ok", "temporal": "ok"},
    }


async def test_readyz_is_503_naming_the_registry_while_a_rebuild_is_due(temporal, tmp_path):
    """A registry of the old shape at 0002: the app's start-up migration re-creates the
    projection and records a rebuild as due; ready again once the rebuild says done."""
    settings = make_settings(tmp_path)
    engine = make_engine(settings.database_url)
    upgrade(engine, "0002")
    insert_old_rows(engine)
    async with own_client(settings, temporal) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503, response.text
        body = response.json()
        assert (body["status"], body["error"], body["failing"]) == (
            "unavailable",
            "NotReady",
            ["registry"],
        )
        assert body["checks"]["database"] == body["checks"]["temporal"] == "ok"
        assert (
            "rebuild due (projection tables re-created by migration 0003)"
            in (body["checks"]["registry"])
        )
        assert "landflow registry rebuild" in body["detail"]
        with Session(engine) as session:
            writes.set_status(session, key="rebuild", value="running", detail="42 parcels")
        assert (await client.get("/readyz")).json()["failing"] == ["registry"]
        with Session(engine) as session:
            writes.set_status(session, key="rebuild", value="done")
        assert (await client.get("/readyz")).status_code == 200
    engine.dispose()


async def test_readyz_is_503_naming_temporal_when_it_is_unreachable(unreachable_temporal):
    client, address = unreachable_temporal
    started = time.monotonic()
    response = await client.get("/readyz")
    assert time.monotonic() - started < 10, "readiness must answer within its timeout"
    assert response.status_code == 503, response.text
    body = response.json()
    assert body["failing"] == ["temporal"]
    assert body["checks"]["database"] == body["checks"]["registry"] == "ok"
    assert body["checks"]["temporal"] == f"unreachable at {address}"
    assert f"temporal: unreachable at {address}" in body["detail"]


async def test_metrics_count_requests_by_route_template_and_status(api, pid):
    def requests(text: str) -> dict[Labels, float]:
        return samples(text, "landflow_http_requests_total")

    def key(method: str, route: str, status: int) -> Labels:
        return (("method", method), ("route", route), ("status", str(status)))

    before = requests(await scrape(api))
    await api.get(f"/parcels/{pid}", headers=auth("auditor"))  # 404: not started
    await api.get(f"/no/such/page/{pid}")
    await start(api, clean_facts(pid))
    await api.get(f"/parcels/{pid}", headers=auth("auditor"))
    text = await scrape(api)
    after = requests(text)
    expected = {
        key("GET", "/parcels/{parcel_id}", 404): 1,
        key("GET", "/parcels/{parcel_id}", 200): 1,
        key("POST", "/parcels", 201): 1,
        key("GET", "unmatched", 404): 1,
    }
    for labels, count in expected.items():
        assert after.get(labels, 0) - before.get(labels, 0) == count, labels
    assert not any(pid in value for labels in after for _, value in labels)  # never raw paths
    latency = samples(text, "landflow_http_request_duration_seconds_count")
    assert (
        latency[key("GET", "/parcels/{parcel_id}", 200)]
        == after[key("GET", "/parcels/{parcel_id}", 200)]
    )


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"{what} within {seconds}s"
        await asyncio.sleep(0.1)


async def test_metrics_gauge_parcels_by_stage_zeros_included(api, pid):
    async def parcels() -> dict[str, float]:
        found = samples(await scrape(api), "landflow_parcels")
        return {dict(labels)["stage"]: value for labels, value in found.items()}

    before = await parcels()
    assert before.keys() >= {"intake", "filing", "release", "released"}  # every stage, zeros too
    started = await start(api, clean_facts(pid))
    assert started["stage"] == "release"

    async def one_more() -> bool:
        return (await parcels())["release"] == before["release"] + 1

    await until(one_more, "the registry to count the new parcel at release")


async def test_the_worker_exports_sdk_metrics_on_its_port(temporal, tmp_path):
    """What the compose worker's healthcheck scrapes: the SDK's Prometheus endpoint."""
    port = free_port()
    settings = make_settings(
        tmp_path,
        temporal_address=temporal.client.service_client.config.target_host,
        worker_metrics_port=port,
        worker_metrics_host="127.0.0.1",
    )
    client = await connect(settings, prometheus_runtime("127.0.0.1", port))
    text = ""

    async def polling() -> bool:
        nonlocal text
        try:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        except httpx.TransportError:
            return False
        return "temporal_num_pollers" in text and settings.task_queue in text

    async with httpx.AsyncClient() as http, build_worker(client, settings, http):
        await until(polling, f"the worker's pollers on :{port}/metrics (last: {text[:500]!r})")
