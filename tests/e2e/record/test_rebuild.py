"""The registry is a projection that can always be rebuilt from the engine.

Its own dev server, so visibility holds only this module's parcels and `verify` compares
exactly them with the registry.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session
from temporalio.client import WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from documents import open_store
from landflow.messages import REBUILD_WORKFLOW, RebuildRequest, RebuildSummary
from landflow.settings import Settings
from registry.engine import make_engine
from registry.migrate import upgrade
from registry.rebuild import reconcile
from service.worker import build_worker, ensure_registry_current, registry_behind
from tests.conftest import api_client, binary, make_settings
from tests.e2e.record.test_registrations import _listed
from tests.helpers import act, clean_facts, facts, start
from workflows import visibility


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[WorkflowEnvironment, Settings, httpx.AsyncClient]]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        search_attributes=list(visibility.ALL_KEYS),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    settings = make_settings(tmp_path_factory.mktemp("rebuild"))
    try:
        async with build_worker(env.client, settings), api_client(settings, env.client) as api:
            yield env, settings, api
    finally:
        await env.shutdown()


async def _wait_visible(env: WorkflowEnvironment, count: int) -> None:
    """Visibility lags the engine a little; wait until it lists every parcel."""
    for _ in range(100):
        if (await env.client.count_workflows('WorkflowType = "ParcelWorkflowV2"')).count >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"visibility never listed {count} parcels")


async def _verify(env: WorkflowEnvironment, settings: Settings) -> list[str]:
    engine = make_engine(settings.database_url)
    try:
        report = await reconcile(
            env.client, engine, open_store(str(settings.documents_dir)), write=False
        )
    finally:
        engine.dispose()
    return report.differences + report.unknown_runs


async def _rebuild(
    env: WorkflowEnvironment, settings: Settings, **request: object
) -> RebuildSummary:
    handle: WorkflowHandle = await env.client.start_workflow(
        REBUILD_WORKFLOW,
        RebuildRequest(reason="test", **request),  # type: ignore[arg-type]
        id=f"rebuild-{uuid.uuid4().hex[:6]}",
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        result_type=RebuildSummary,
    )
    return await handle.result(rpc_timeout=timedelta(seconds=60))


@pytest.fixture(scope="module")
def parcels() -> dict[str, str]:
    return {
        kind: f"R{uuid.uuid4().hex[:8]}" for kind in ("released", "listed", "open", "terminated")
    }


async def test_verify_finds_no_difference_after_ordinary_work(own, parcels):
    env, settings, api = own
    await start(api, clean_facts(parcels["released"]))
    await act(api, parcels["released"], "release", {}, "planning_land")
    await _listed(api, parcels["listed"])
    await start(api, facts(parcels["open"]))
    await start(api, facts(parcels["terminated"]))
    await env.client.get_workflow_handle(f"parcel-{parcels['terminated']}").terminate("test")
    await _wait_visible(env, 4)
    differences = await _verify(env, settings)
    # the terminated parcel's row still says running: no activity of its own ran
    assert [d for d in differences if parcels["terminated"] not in d] == []
    assert any("status is 'running', the engine says 'terminated'" in d for d in differences)
    summary = await _rebuild(env, settings, closed_within_hours=1)  # the periodic reconcile
    assert summary.registrations == 1
    assert await _verify(env, settings) == []
    inbox = (await api.get("/tasks", headers={"Authorization": "Bearer t-depb"})).json()
    assert parcels["terminated"] not in {t["parcel_id"] for t in inbox["tasks"]}


async def test_hand_edited_rows_are_reported_and_rebuilt(own, parcels):
    env, settings, _api = own
    database = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        db.execute(
            "UPDATE parcels SET updated_at = '2099-01-01 00:00:00', stage = 'released',"
            " revision = 99999 WHERE parcel_id = ?",
            (parcels["open"],),
        )
        db.execute(
            "DELETE FROM list_entries WHERE parcel_id = ? AND list_name = 'negative'",
            (parcels["listed"],),
        )
        db.execute(
            "DELETE FROM decisions WHERE parcel_id = ? AND rule = 'R5'", (parcels["listed"],)
        )
    differences = await _verify(env, settings)
    assert any(parcels["open"] in d and "parcels.stage" in d for d in differences)
    assert any(parcels["listed"] in d and "list negative" in d for d in differences)
    assert any(parcels["listed"] in d and "/R5/" in d for d in differences)
    summary = await _rebuild(env, settings)
    assert summary.differences == len(differences)
    assert await _verify(env, settings) == []


async def test_a_deleted_registry_is_found_behind_and_rebuilt(own, parcels, tmp_path: Path):
    env, settings, _api = own
    fresh = settings.model_copy(
        update={
            "database_url": f"sqlite:///{tmp_path / 'empty.db'}",
            "task_queue": f"q-{uuid.uuid4().hex[:6]}",
        }
    )
    engine = make_engine(fresh.database_url)
    upgrade(engine)
    assert await registry_behind(env.client, engine) is not None
    async with build_worker(env.client, fresh), api_client(fresh, env.client) as api:
        ready = await api.get("/readyz")
        await ensure_registry_current(env.client, engine, fresh.task_queue)
        not_ready = await api.get("/readyz")
        assert not_ready.status_code == 503 and "registry" in not_ready.json()["failing"]
        handle = env.client.get_workflow_handle("landflow-registry-rebuild")
        await handle.result(rpc_timeout=timedelta(seconds=60))
        assert (await api.get("/readyz")).status_code == 200
        listed = (await api.get("/lists/contaminated")).json()
        assert parcels["listed"] in {e["parcel_id"] for e in listed["entries"]}
    assert ready.status_code in (200, 503)
    assert await _verify(env, fresh) == []
    with Session(engine) as session:
        assert await registry_behind(env.client, engine) is None, session
    engine.dispose()


def test_a_corrupt_registry_names_the_file_and_the_fix(tmp_path: Path):
    broken = tmp_path / "registry.db"
    broken.write_bytes(b"this is not a database" * 100)
    settings = make_settings(tmp_path, database_url=f"sqlite:///{broken}")
    from api.app import create_app
    from registry.engine import RegistryUnavailable

    with pytest.raises(RegistryUnavailable) as refused:
        create_app(settings)
    assert str(broken) in str(refused.value) and "landflow registry rebuild" in str(refused.value)
