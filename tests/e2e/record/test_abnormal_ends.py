"""A failed or timed-out parcel is a state the API knows (issue 9, "abnormal ends"), as a
terminated one is (test_registrations.py): GET says so, actions answer 409 ParcelClosed,
the periodic reconcile takes it out of the inbox, its public list entry stays, and the
id is registered again only by an explicit, recorded restart.

Both ends are real, on the real dev server and worker:
- failed: the rules activity refuses for good (`RuleError`, non-retryable) when the
  samples a report cites cannot be read from the document store; here the blob under
  their digest is torn (half its bytes), as a bad restore of the store would leave it.
- timed out: the parcel started as the API starts it (same input, search attributes and
  summary) but with a workflow execution timeout, which the server enforces.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.api.enums.v1 import WorkflowExecutionStatus
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.testing import WorkflowEnvironment

from landflow.facts import ParcelFacts
from landflow.messages import (
    PARCEL_WORKFLOW,
    ParcelStart,
    RebuildSummary,
    canonical_json,
    workflow_id,
)
from landflow.settings import Settings
from service.schedules import RECONCILE_ID, report_schedules
from tests.e2e.record.test_registrations import _listed, _listed_facts
from tests.helpers import act, auth, cite, eventually, facts, get, start
from workflows import visibility

STATUS = WorkflowExecutionStatus


async def _ended(client: Client, pid: str, status: int, within_s: float) -> None:
    """Poll the run's status until it is `status` (bounded: fails naming the last one)."""
    handle = client.get_workflow_handle(workflow_id(pid))

    async def ended() -> bool:
        return (await handle.describe()).status == status

    await eventually(ended, f"parcel-{pid} closed as {STATUS.Name(status)}", timeout=within_s)


async def _reconcile_as_scheduled(client: Client, settings: Settings) -> RebuildSummary:
    """One pass of the landflow-registry-reconcile schedule: its workflow, its request."""
    action = report_schedules(settings)[RECONCILE_ID].action
    assert isinstance(action, ScheduleActionStartWorkflow)
    return await client.execute_workflow(
        action.workflow,
        *action.args,
        id=f"{RECONCILE_ID}-{uuid.uuid4().hex[:8]}",
        task_queue=action.task_queue,
        result_type=RebuildSummary,
        execution_timeout=timedelta(seconds=60),
    )


async def _inbox(api: httpx.AsyncClient, role: str) -> set[str]:
    """Every parcel in the role's inbox, all pages (the session's inbox is shared)."""
    found: set[str] = set()
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": 500} | ({"cursor": cursor} if cursor else {})
        page = (await api.get("/tasks", params=params, headers=auth(role))).json()
        found |= {t["parcel_id"] for t in page["tasks"]}
        cursor = page["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError(f"{role}'s inbox never ended")


async def _current_entries(api: httpx.AsyncClient, name: str, pid: str) -> list[dict]:
    response = await api.get(f"/lists/{name}", params={"q": pid})
    return [e for e in response.json()["entries"] if e["parcel_id"] == pid]


async def _open(api: httpx.AsyncClient, pid: str, lists: tuple[str, ...]) -> tuple[str, str]:
    """The parcel's open step as action and role, after checking it is on `lists` and in
    its owner's inbox."""
    parcel = await get(api, pid)
    for name in lists:
        assert len(await _current_entries(api, name, pid)) == 1, name
    first = parcel["next_actions"][0]
    assert pid in await _inbox(api, first["role"])
    return first["action"], first["role"]


async def _closed_as_the_api_knows_it(
    api: httpx.AsyncClient,
    env: WorkflowEnvironment,
    settings: Settings,
    pid: str,
    status: str,
    was_open: tuple[str, str],
    lists: tuple[str, ...],
    registered: dict[str, Any],
) -> None:
    """Everything the issue asks of an abnormally ended parcel, then its restart."""
    action, owed = was_open
    parcel = await get(api, pid)
    assert (parcel["status"], parcel["next_actions"], parcel["waiting_on"]) == (status, [], [])
    refused = await act(api, pid, action, {}, owed, expect=409)
    assert refused["error"] == "ParcelClosed" and status in refused["detail"], refused
    # No activity of its own ran when it ended: the registry still shows the open step
    # until the periodic reconcile (the schedule's request) brings the rows in line.
    assert pid in await _inbox(api, owed)
    reconciled = await _reconcile_as_scheduled(env.client, settings)
    assert reconciled.registrations >= 1 and reconciled.differences >= 1, reconciled
    assert pid not in await _inbox(api, owed)
    runs = (await api.get(f"/parcels/{pid}/runs", headers=auth("auditor"))).json()["runs"]
    assert [r["status"] for r in runs] == [status]
    # The public lists keep the entries the law made: nothing took the parcel off them.
    for name in lists:
        (entry,) = await _current_entries(api, name, pid)
        assert entry["left_at"] is None, name
    again = await api.post("/parcels", json=registered, headers=auth("reserve_agency"))
    assert (again.status_code, again.json()["error"]) == (409, "PreviousRunAbnormal"), again.text
    assert status in again.json()["detail"]
    restart = {"reason": f"the run {status}; registered again after review", "facts": registered}
    restarted = await api.post(
        f"/parcels/{pid}/restart", json=restart, headers=auth("reserve_agency")
    )
    assert restarted.status_code == 201, restarted.text
    parcel = await get(api, pid)
    assert parcel["status"] == "running" and parcel["restart_of"] == runs[0]["run_id"]
    trail = (await api.get(f"/parcels/{pid}/trail", headers=auth("auditor"))).json()
    assert trail["runs"][0]["status"] == status
    assert trail["runs"][-1]["restart"]["reason"] == restart["reason"]
    assert trail["runs"][-1]["restart"]["by"].startswith("reserve_agency:")
    # Restarted, not listed again yet: still on the lists, once, and so says its profile.
    profile = (await api.get(f"/public/parcels/{pid}")).json()
    assert sorted(e["list_name"] for e in profile["lists"]) == sorted(lists), profile
    for name in lists:
        assert len(await _current_entries(api, name, pid)) == 1, name


def _torn(documents_dir: Path, samples: list[dict[str, Any]]) -> str:
    """Put a torn copy of the samples' canonical JSON under their digest (the filesystem
    store's layout), as a bad restore would leave it; the API then finds them stored."""
    whole = canonical_json(samples)
    digest = hashlib.sha256(whole).hexdigest()
    blob = documents_dir / "sha256" / digest[:2] / digest[2:]
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(whole[: len(whole) // 2])
    return digest


async def test_a_failed_parcel_is_known_refused_dropped_and_restarted(api, temporal, settings, pid):
    """Screening finds the closed coking plant suspected (the public suspected list, BJ 16,
    18); the investigation report's samples cannot be read and the rules fail for good."""
    await start(api, facts(pid))
    await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")
    action, owed = await _open(api, pid, lists=("suspected",))
    assert action == "investigation_report"
    samples = [{"item": "铅", "value_mg_kg": 900.0, "sample_id": pid}]  # this parcel's own
    _torn(settings.documents_dir, samples)
    documents = await cite(api, pid, "investigation_report", owed)
    with_samples = {"samples": samples, "extent_m2": 1, "degree": "x", "documents": documents}
    reported = await api.post(
        f"/parcels/{pid}/actions/investigation_report", json=with_samples, headers=auth(owed)
    )
    # Accepted, then the run failed before it settled: the answer says so, not a 500.
    assert (reported.status_code, reported.json()["error"]) == (409, "ParcelClosed"), reported.text
    assert "failed" in reported.json()["detail"] and "restart" in reported.json()["detail"]
    await _ended(temporal.client, pid, STATUS.WORKFLOW_EXECUTION_STATUS_FAILED, within_s=20)
    history = await temporal.client.get_workflow_handle(workflow_id(pid)).fetch_history()
    cause = history.events[-1].workflow_execution_failed_event_attributes.failure.cause
    assert cause.application_failure_info.type == "RuleError", cause
    assert cause.application_failure_info.non_retryable and "cannot decide" in cause.message
    await _closed_as_the_api_knows_it(
        api, temporal, settings, pid, "failed", (action, owed), ("suspected",), facts(pid)
    )


async def _start_timing_out(
    client: Client, settings: Settings, registered: dict[str, Any], seconds: float
) -> None:
    """The parcel started exactly as POST /parcels starts it, with an execution timeout."""
    parcel = ParcelFacts.model_validate(registered)
    await client.start_workflow(
        PARCEL_WORKFLOW,
        ParcelStart.register(parcel.submitted()),
        id=workflow_id(parcel.parcel_id),
        task_queue=settings.task_queue,
        search_attributes=visibility.initial_search_attributes(parcel),
        static_summary=visibility.static_summary(parcel),
        execution_timeout=timedelta(seconds=seconds),
    )


TIMEOUT_S = 15.0  # listing takes about 2 s here: room for a machine 5 times slower


async def test_a_timed_out_parcel_is_known_refused_dropped_and_restarted(
    api, temporal, settings, pid
):
    """Listed on both lists (Law 58, 61; BJ 18), then its run times out."""
    registered = _listed_facts(pid)
    began = time.monotonic()
    await _start_timing_out(temporal.client, settings, registered, TIMEOUT_S)

    async def investigation_open() -> bool:
        return bool((await get(api, pid))["next_actions"])

    await eventually(investigation_open, f"{pid}'s investigation open", timeout=TIMEOUT_S / 3)
    await _listed(api, pid, started=True)
    lists = ("contaminated", "negative")
    was_open = await _open(api, pid, lists)
    listed_in = time.monotonic() - began
    assert listed_in < TIMEOUT_S, f"listed {listed_in:.1f}s in, after the run's timeout"
    assert was_open == ("choose_path", "district_government")
    await _ended(temporal.client, pid, STATUS.WORKFLOW_EXECUTION_STATUS_TIMED_OUT, TIMEOUT_S + 20)
    entered = {name: (await _current_entries(api, name, pid))[0]["entered_at"] for name in lists}
    await _closed_as_the_api_knows_it(
        api, temporal, settings, pid, "timed_out", was_open, lists, registered
    )
    await _listed(api, pid, started=True)  # the restarted run lists it again: once
    for name in lists:
        (entry,) = await _current_entries(api, name, pid)
        assert entry["entered_at"] > entered[name], "the restarted run's entry counts"
