"""The auditors' endpoints and the server-side CLI commands, on the real dev server.

The CLI tests are plain (sync) functions: the commands run their own event loop with
asyncio.run, which they cannot do inside the test session's running loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlmodel import Session, select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from landflow import audit, audit_cli, registry
from landflow.registry import DecisionRow, ParcelRow
from landflow.settings import Settings, get_settings
from tests.audit.test_golden import UnguardedChange, removed_decision
from tests.conftest import binary
from tests.helpers import act, auth, clean_facts, facts, get, start

runner = CliRunner()


async def released(api: httpx.AsyncClient, pid: str) -> str:
    await start(api, clean_facts(pid))
    await act(api, pid, "release", {"notes": "商业用地维持原用途 <b>ok</b>"}, "planning_land")
    return pid


async def _visible(temporal: WorkflowEnvironment, pids: list[str]) -> None:
    """Wait until visibility lists the parcels as closed (it lags the history a little)."""
    query = (
        f"ParcelId IN ({', '.join(json.dumps(p) for p in pids)}) AND ExecutionStatus = 'Completed'"
    )
    for _ in range(50):
        if (await temporal.client.count_workflows(query)).count == len(pids):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{pids} never became visible as completed")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def parcels(api: httpx.AsyncClient, temporal: WorkflowEnvironment) -> list[str]:
    """Two released parcels of this module, known to visibility."""
    pids = [await released(api, f"AUD{uuid.uuid4().hex[:10]}") for _ in range(2)]
    await _visible(temporal, pids)
    return pids


@pytest.fixture
def cli_env(temporal: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """LANDFLOW_* settings pointing the CLI at the test server."""
    monkeypatch.setenv(
        "LANDFLOW_TEMPORAL_ADDRESS", temporal.client.service_client.config.target_host
    )
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# --- GET /history ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ["planning_land", "reserve_agency", "public", "district_epb"])
async def test_history_is_refused_to_other_roles(api, parcels, role):
    response = await api.get(f"/parcels/{parcels[0]}/history", headers=auth(role))
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "WrongRole"


@pytest.mark.parametrize("role", ["ops", "auditor"])
async def test_history_for_ops_and_auditor_in_temporal_cli_shape(api, parcels, role):
    response = await api.get(f"/parcels/{parcels[0]}/history", headers=auth(role))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    events = response.json()["events"]
    assert events[0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED"
    assert [int(e["eventId"]) for e in events] == list(range(1, len(events) + 1))
    digest = hashlib.sha256(response.content).hexdigest()
    assert response.headers["x-history-sha256"] == digest


async def test_history_is_what_the_temporal_cli_prints(api, parcels, temporal):
    """Same events as `temporal workflow show --output json`, so either file can be audited."""
    shown = subprocess.run(
        [
            binary("temporal"),
            "workflow",
            "show",
            "--workflow-id",
            f"parcel-{parcels[0]}",
            "--address",
            temporal.client.service_client.config.target_host,
            "--output",
            "json",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    response = await api.get(f"/parcels/{parcels[0]}/history", headers=auth("auditor"))
    assert json.loads(shown).keys() == response.json().keys() == {"events"}
    assert audit.ParcelHistory.from_json(shown).canonical() == response.content


async def test_history_of_an_unknown_parcel_is_404(api):
    for pid in ("NOSUCHPARCEL", "bad%20id"):
        response = await api.get(f"/parcels/{pid}/history", headers=auth("auditor"))
        assert response.status_code == 404, response.text


async def test_history_needs_a_token(api, parcels):
    response = await api.get(f"/parcels/{parcels[0]}/history")
    assert response.status_code == 401


async def test_history_includes_every_run_after_a_reset(api, temporal, pid):
    """Ops reset a parcel (a new run); the history, replay and trail cover both runs."""
    await released(api, pid)
    wid = f"parcel-{pid}"
    first = await temporal.client.get_workflow_handle(wid).fetch_history()
    task_done = next(
        e.event_id for e in first.events if e.HasField("workflow_task_completed_event_attributes")
    )
    reset = await temporal.client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal.client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=wid, run_id=first.run_id),
            reason="audit test: reset to the first workflow task",
            workflow_task_finish_event_id=task_done,
            request_id=str(uuid.uuid4()),
        )
    )
    for _ in range(50):  # the new run runs the procedure again up to the release step
        if (await get(api, pid))["waiting_on"] == "planning_land":
            break
        await asyncio.sleep(0.1)
    await act(api, pid, "release", {"notes": "重置后放行"}, "planning_land")

    response = await api.get(f"/parcels/{pid}/history", headers=auth("auditor"))
    history = audit.ParcelHistory.from_json(response.content)
    assert [audit.run_id_of(run) for run in history.runs()] == [first.run_id, reset.run_id]
    trail = (await api.get(f"/parcels/{pid}/trail", headers=auth("auditor"))).json()
    assert [(r["run_id"], r["status"]) for r in trail["runs"]] == [
        (first.run_id, "completed"),
        (reset.run_id, "completed"),
    ]
    releases = [(a["run"], a["payload"]["notes"]) for a in trail["actions"]]
    assert releases == [(1, "商业用地维持原用途 <b>ok</b>"), (2, "重置后放行")]
    verdict = await api.post(f"/parcels/{pid}/replay", headers=auth("auditor"))
    assert verdict.json() == {"deterministic": True}


# --- POST /replay ---------------------------------------------------------------------


async def test_replay_of_the_server_history_is_deterministic(api, parcels):
    response = await api.post(f"/parcels/{parcels[0]}/replay", headers=auth("auditor"))
    assert response.status_code == 200, response.text
    assert response.json() == {"deterministic": True}


async def test_replay_is_for_auditors(api, parcels):
    response = await api.post(f"/parcels/{parcels[0]}/replay", headers=auth("ops"))
    assert response.status_code == 403


async def test_replay_of_an_uploaded_tampered_history_names_the_event(api):
    tampered, culprit = removed_decision()
    owner = audit.ParcelHistory.from_json(tampered).workflow_id().removeprefix("parcel-")
    response = await api.post(f"/parcels/{owner}/replay", json=tampered, headers=auth("auditor"))
    assert response.status_code == 200, response.text
    verdict = response.json()
    assert verdict["deterministic"] is False
    assert verdict["error"] and verdict["event_id"] in (culprit, culprit + 1)


async def test_replay_refuses_someone_elses_history(api, parcels):
    tampered, _ = removed_decision()
    response = await api.post(
        f"/parcels/{parcels[0]}/replay", json=tampered, headers=auth("auditor")
    )
    assert response.status_code == 422
    assert response.json()["fields"][0]["field"] == "body"


# --- GET /trail -----------------------------------------------------------------------


async def test_trail_json_by_default(api, parcels):
    response = await api.get(f"/parcels/{parcels[0]}/trail", headers=auth("auditor"))
    assert response.status_code == 200, response.text
    trail = response.json()
    assert trail["name"] == "某商业地块" and trail["status"] == "completed"
    assert [s["stage"] for s in trail["stages"]] == ["intake", "release", "released"]
    (release,) = trail["actions"]
    assert (release["action"], release["role"], release["subject"]) == (
        "release",
        "planning_land",
        "planning_land",
    )
    assert release["payload"] == {"notes": "商业用地维持原用途 <b>ok</b>"}
    assert {d["rule"] for d in trail["decisions"]} == {"R1", "R3", "R6"}


async def test_trail_of_a_parcel_still_running(api, pid):
    await start(api, facts(pid))
    trail = (await api.get(f"/parcels/{pid}/trail", headers=auth("auditor"))).json()
    assert (trail["status"], trail["stage"], trail["actions"]) == (
        "running",
        "closure_screening",
        [],
    )
    assert trail["stages"][-1]["left"] is None
    assert [d["rule"] for d in trail["decisions"]] == ["R3", "R6"]


async def test_trail_html_is_printable_and_escaped(api, parcels):
    headers = {**auth("auditor"), "Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    response = await api.get(f"/parcels/{parcels[0]}/trail", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "某商业地块" in page and "朝阳区" in page
    assert "@media print" in page
    assert "<b>ok</b>" not in page and "&lt;b&gt;ok&lt;/b&gt;" in page  # autoescaped
    trail = (await api.get(f"/parcels/{parcels[0]}/trail", headers=auth("auditor"))).json()
    assert trail["history_sha256"] in page


async def test_trail_is_for_auditors(api, parcels):
    response = await api.get(f"/parcels/{parcels[0]}/trail", headers=auth("ops"))
    assert response.status_code == 403


# --- tamper evidence ------------------------------------------------------------------


async def test_editing_the_registry_changes_nothing_in_the_trail(api, parcels, settings: Settings):
    pid = parcels[1]
    before = (await api.get(f"/parcels/{pid}/trail", headers=auth("auditor"))).json()
    engine = registry.make_engine(settings.database_url)
    with Session(engine) as session:
        r1 = session.exec(
            select(DecisionRow).where(DecisionRow.parcel_id == pid, DecisionRow.rule == "R1")
        ).one()
        assert r1.outcome == "not_required"
        r1.outcome, r1.citation = "required", "forged"
        row = session.get(ParcelRow, pid)
        assert row is not None
        row.stage = "investigation"
        session.add_all([r1, row])
        session.commit()
        forged = r1.decision_id
    with Session(engine) as session:  # the edit took
        assert session.get(DecisionRow, forged).outcome == "required"
    engine.dispose()
    after = (await api.get(f"/parcels/{pid}/trail", headers=auth("auditor"))).json()
    assert after == before
    assert [d["outcome"] for d in after["decisions"] if d["rule"] == "R1"] == ["not_required"]


def test_exported_file_hashes_to_the_trail_hash(cli_env, parcels, tmp_path: Path):
    out = tmp_path / "parcel.json"
    result = runner.invoke(
        audit_cli.audit_app, ["export", "--parcel", parcels[1], "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert digest in result.output
    trail = runner.invoke(audit_cli.audit_app, ["trail", "--file", str(out), "--json"])
    assert trail.exit_code == 0, trail.output
    assert json.loads(trail.output)["history_sha256"] == digest
    replayed = runner.invoke(audit_cli.audit_app, ["replay", "--file", str(out)])
    assert replayed.exit_code == 0, replayed.output


# --- the CLI against the server -------------------------------------------------------


def test_cli_export_to_stdout_is_the_history(cli_env, parcels):
    result = runner.invoke(audit_cli.audit_app, ["export", "--parcel", parcels[0]])
    assert result.exit_code == 0, result.output
    history = audit.ParcelHistory.from_json(result.stdout_bytes)
    assert history.workflow_id() == f"parcel-{parcels[0]}"
    assert history.canonical() == result.stdout_bytes


def test_cli_export_of_an_unknown_parcel_fails(cli_env):
    result = runner.invoke(audit_cli.audit_app, ["export", "--parcel", "NOSUCHPARCEL"])
    assert result.exit_code == 1
    assert "not found" in result.output


def _only(parcels: list[str]) -> str:
    return f"ParcelId IN ({', '.join(json.dumps(p) for p in parcels)})"


def test_cli_replay_all_summarises(cli_env, parcels):
    result = runner.invoke(audit_cli.audit_app, ["replay", "--all", "--query", _only(parcels)])
    assert result.exit_code == 0, result.output
    assert "replayed 2, failed 0" in result.output


def test_cli_replay_all_reports_each_failing_parcel(cli_env, parcels, monkeypatch):
    """As if a build with an unguarded change were deployed."""
    current_code = audit.HistoryReplayer
    monkeypatch.setattr(audit_cli.audit, "HistoryReplayer", lambda: current_code([UnguardedChange]))
    result = runner.invoke(audit_cli.audit_app, ["replay", "--all", "--query", _only(parcels)])
    assert result.exit_code == 1
    assert "replayed 2, failed 2" in result.output
    for pid in parcels:
        assert f"FAILED {pid} (run " in result.output
    assert "Nondeterminism" in result.output
