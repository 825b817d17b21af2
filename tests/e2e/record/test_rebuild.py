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
from temporalio.testing import WorkflowEnvironment

from documents import open_store
from landflow.messages import REBUILD_WORKFLOW, RebuildRequest, RebuildSummary
from landflow.settings import Settings
from registry import rebuild
from registry.engine import make_engine
from registry.migrate import upgrade
from registry.rebuild import reconcile
from service.worker import build_worker, ensure_registry_current, registry_behind
from tests.conftest import api_client, dev_server, make_settings
from tests.e2e.record.test_registrations import _listed, _listed_facts
from tests.helpers import act, clean_facts, eventually, facts, start
from workflows import visibility
from workflows.history import fetch_history


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def own(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[WorkflowEnvironment, Settings, httpx.AsyncClient]]:
    env = await dev_server()
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


async def _rows_of(settings: Settings, parcel_id: str) -> dict[str, int]:
    database = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        return {
            table: db.execute(
                f"SELECT count(*) FROM {table} WHERE parcel_id = ?", (parcel_id,)
            ).fetchone()[0]
            for table in ("parcels", "decisions", "list_entries")
        }


async def test_a_rebuild_keeps_parcels_started_after_it_listed_them(own, monkeypatch):
    """A rebuild lists the parcels once; one started meanwhile has rows the listing never
    saw. They are its own activities' rows, not a run the engine never had."""
    env, settings, api = own
    late = f"R{uuid.uuid4().hex[:8]}"
    await _listed(api, late)
    before = await _rows_of(settings, late)
    assert before["parcels"] == 1 and before["decisions"] > 0 and before["list_entries"] > 0
    listed = rebuild.parcel_ids

    async def listed_before_it_started(client, closed_since=None):
        return [p for p in await listed(client, closed_since) if p != late]

    monkeypatch.setattr(rebuild, "parcel_ids", listed_before_it_started)
    engine = make_engine(settings.database_url)
    try:
        report = await reconcile(
            env.client, engine, open_store(str(settings.documents_dir)), write=True
        )
    finally:
        engine.dispose()
    assert report.unknown_runs == []
    assert await _rows_of(settings, late) == before


async def test_a_rebuild_from_a_stale_history_keeps_rows_written_meanwhile(own, monkeypatch):
    """The rebuild reads a parcel's history, then writes; an activity that wrote rows in
    between (here: the decisions of a report) must keep them, and the parcel must never
    be seen without its rows."""
    env, settings, api = own
    pid = f"R{uuid.uuid4().hex[:8]}"
    await start(api, _listed_facts(pid))
    stale = await fetch_history(env.client, pid)
    await _listed(api, pid, started=True)
    after = await _rows_of(settings, pid)
    reads = {"count": 0}

    async def first_read_is_stale(client, parcel_id):
        reads["count"] += 1
        return stale if reads["count"] == 1 else await fetch_history(client, parcel_id)

    async def only_this_parcel(client, closed_since=None):
        return [pid]

    monkeypatch.setattr(rebuild, "fetch_history", first_read_is_stale)
    monkeypatch.setattr(rebuild, "parcel_ids", only_this_parcel)
    engine = make_engine(settings.database_url)
    try:
        await reconcile(env.client, engine, None, write=True, closed_since=None)
    finally:
        engine.dispose()
    monkeypatch.undo()
    assert await _rows_of(settings, pid) == after
    assert reads["count"] >= 2, "the history grew while the rows were written: read again"
    assert [d for d in await _verify(env, settings) if pid in d] == []


async def test_a_parcel_waiting_for_its_first_projection_is_not_a_registry_behind(own):
    """Registered while no worker polls (or in flight as one restarts): it projects itself
    once a worker comes; a rebuild at every worker start would be needless."""
    env, settings, _api = own
    engine = make_engine(settings.database_url)
    try:
        assert await registry_behind(env.client, engine) is None
        unpolled = settings.model_copy(update={"task_queue": f"q-{uuid.uuid4().hex[:6]}"})
        pid = f"R{uuid.uuid4().hex[:8]}"
        async with api_client(unpolled, env.client) as no_worker:
            await start(no_worker, clean_facts(pid))
        handle = env.client.get_workflow_handle(f"parcel-{pid}")
        at_intake = f'WorkflowId = "parcel-{pid}" AND {visibility.STAGE.name} = "intake"'

        async def listed_at_intake() -> int:
            return (await env.client.count_workflows(at_intake)).count

        try:
            # Visibility lags the engine: until it lists the parcel the check below would
            # pass without having seen it. The registry has no row of it yet.
            await eventually(listed_at_intake, f"parcel-{pid} listed at intake", timeout=10)
            assert (await _rows_of(settings, pid))["parcels"] == 0
            assert await registry_behind(env.client, engine) is None
        finally:
            await handle.terminate("test: never polled")
    finally:
        engine.dispose()
