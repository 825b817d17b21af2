"""The API and worker with the registry on each database: SQLite and PostgreSQL.

A worker and an app of their own (fresh task queue) write to the session's database of
each kind; a parcel is started and two actions are driven through the API, and the
registry rows, the inbox and the public list are read back from that database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest_asyncio
from sqlmodel import Session
from temporalio.testing import WorkflowEnvironment

from landflow import registry
from landflow.registry import ParcelRow
from landflow.worker import build_worker
from tests.conftest import api_client, make_settings
from tests.helpers import REPORT, act, auth, facts, start


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def api_on(
    temporal: WorkflowEnvironment, database_url: str, tmp_path_factory
) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    settings = make_settings(tmp_path_factory.mktemp("db-api"), database_url=database_url)
    async with httpx.AsyncClient() as http:
        worker = build_worker(temporal.client, settings, http)
        async with worker, api_client(settings, temporal.client) as api:
            yield api, database_url


async def test_a_parcel_moves_through_two_actions_with_the_registry_on_each_database(api_on, pid):
    api, database_url = api_on
    started = await start(api, facts(pid))
    assert (started["stage"], started["waiting_on"]) == ("closure_screening", "district_epb")
    await act(
        api, pid, "closure_screening", {"result": "suspected", "notes": "焦油"}, "district_epb"
    )
    parcel = await act(api, pid, "investigation_report", REPORT, "reserve_agency")
    assert (parcel["stage"], parcel["waiting_on"]) == ("filing", "city_epb")

    engine = registry.make_engine(database_url)
    try:
        with Session(engine) as session:
            row = session.get(ParcelRow, pid)
            assert (row.stage, row.waiting_on, row.name) == ("filing", "city_epb", "原北京焦化厂")
            assert row.deadline is not None and row.deadline.tzinfo is not None
            rules = [d.rule for d in registry.decisions_for(session, parcel_id=pid)]
            assert {"R1", "R2", "R5"} <= set(rules)
    finally:
        engine.dispose()
    inbox = (await api.get("/tasks", headers=auth("city_epb"))).json()
    assert pid in {p["parcel_id"] for p in inbox["parcels"]}
    readiness = await api.get("/readyz")
    assert readiness.status_code == 200, readiness.text
