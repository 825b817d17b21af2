"""Auditors: export a parcel's history (open or closed), replay it offline to a verdict,
and read the trail of every review, who gave it and on which clause."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import ResetReapplyExcludeType
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest

from landflow.messages import workflow_id
from tests.helpers import (
    ACCEPTED,
    DIRTY_SAMPLES,
    RETURNED,
    act,
    auth,
    cite,
    clean_facts,
    eventually,
    facts,
    get,
    start,
)
from workflows.history import ParcelHistory, run_id_of

AUDITOR = auth("auditor")


def audit_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", "audit", *args],
        capture_output=True,
        text=True,
        timeout=timeout,  # the command must end by itself: a hang fails the test
    )


async def _export(api, pid: str, tmp_path: Path) -> Path:
    response = await api.get(f"/parcels/{pid}/history", headers=AUDITOR)
    assert response.status_code == 200
    assert response.headers["x-history-sha256"] == hashlib.sha256(response.content).hexdigest()
    path = tmp_path / f"{pid}.json"
    path.write_bytes(response.content)
    return path


async def test_an_open_parcel_exported_replays_offline_with_a_verdict(api, pid, tmp_path):
    await start(api, facts(pid))
    await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")
    exported = await _export(api, pid, tmp_path)  # waiting on the investigation: open
    done = audit_cli("replay", "--file", str(exported), "--workflow-id", f"parcel-{pid}")
    assert done.returncode == 0, done.stderr
    assert "replays deterministically" in done.stdout
    trail = audit_cli("trail", "--file", str(exported), "--json")
    assert trail.returncode == 0, trail.stderr
    assert json.loads(trail.stdout)["status"] == "running"


async def test_a_tampered_history_does_not_replay(api, pid, tmp_path):
    await start(api, clean_facts(pid))
    await act(api, pid, "release", {}, "planning_land")
    exported = await _export(api, pid, tmp_path)
    history = json.loads(exported.read_text())
    scheduled = [
        e for e in history["events"] if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
    ]
    scheduled[0]["activityTaskScheduledEventAttributes"]["activityType"]["name"] = "something.else"
    exported.write_text(json.dumps(history))
    done = audit_cli("replay", "--file", str(exported))
    assert done.returncode == 1 and "does NOT replay" in done.stderr
    verdict = (
        await api.post(
            f"/parcels/{pid}/replay",
            content=exported.read_bytes(),
            headers={**AUDITOR, "Content-Type": "application/json"},
        )
    ).json()
    assert verdict["deterministic"] is False and verdict["event_id"]


@pytest.mark.parametrize("garbage", [b"{}", b'{"events": []}', b"[" * 5000 + b"]" * 5000])
async def test_replay_of_garbage_is_a_clear_422(api, pid, garbage):
    await start(api, clean_facts(pid))
    response = await api.post(
        f"/parcels/{pid}/replay",
        content=garbage,
        headers={**AUDITOR, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "InvalidBody"


async def test_the_trail_names_every_review_its_opinion_who_gave_it_and_the_clause(api, pid):
    await start(api, facts(pid, enterprise_closed=False, industry="other"))
    documents = await cite(api, pid, "investigation_report", "reserve_agency")
    report = {
        "samples": [{"item": "铅", "value_mg_kg": 50}],
        "extent_m2": 1,
        "degree": "x",
        "documents": documents,
    }
    await act(api, pid, "investigation_report", report, "reserve_agency")
    await act(api, pid, "filing_review", RETURNED, "city_epb")
    await act(
        api,
        pid,
        "investigation_report",
        {**report, "documents": await cite(api, pid, "investigation_report", "reserve_agency")},
        "reserve_agency",
    )
    await act(api, pid, "filing_review", ACCEPTED, "planning_land")
    await act(api, pid, "filing_review", ACCEPTED, "city_epb")
    await act(api, pid, "release", {}, "planning_land")
    trail = (await api.get(f"/parcels/{pid}/trail", headers=AUDITOR)).json()
    reviews = [a for a in trail["actions"] if a["action"] == "filing_review"]
    assert [(a["role"], a["payload"]["decision"]) for a in reviews] == [
        ("city_epb", "returned"),
        ("planning_land", "accepted"),
        ("city_epb", "accepted"),
    ]
    assert reviews[0]["payload"]["opinion"]["panel"] == ["张工", "李工"]
    assert all(a["signed"] for a in trail["actions"])
    reports = [a for a in trail["actions"] if a["action"] == "investigation_report"]
    assert all(a["documents"][0]["sha256"] and a["samples"]["count"] == 1 for a in reports)
    r5 = [d for d in trail["decisions"] if d["rule"] == "R5"]
    assert len(r5) == 2 and r5[0]["citation"].startswith("GB 36600")
    html = await api.get(f"/parcels/{pid}/trail", headers={**AUDITOR, "Accept": "text/html"})
    assert html.status_code == 200 and "filing_review" in html.text and "GB 36600" in html.text


async def test_only_auditors_read_the_record(api, pid):
    await start(api, clean_facts(pid))
    for role in ("public", "city_epb", "reserve_agency"):
        assert (await api.get(f"/parcels/{pid}/trail", headers=auth(role))).status_code == 403
    assert (await api.get(f"/parcels/{pid}/history", headers=auth("ops"))).status_code == 200


async def test_history_trail_and_replay_cover_every_run_after_a_reset(api, temporal, pid, tmp_path):
    """Ops reset a parcel to its first workflow task (a new run) and it goes on from there:
    the history holds both runs, the trail tells them apart, and both replay."""

    async def investigated(notes: str) -> None:
        await act(
            api, pid, "closure_screening", {"result": "suspected", "notes": notes}, "district_epb"
        )
        report = {
            "samples": DIRTY_SAMPLES,
            "extent_m2": 5000,
            "degree": "重度",
            "documents": await cite(api, pid, "investigation_report", "reserve_agency"),
        }
        await act(api, pid, "investigation_report", report, "reserve_agency")

    async def back_at_screening() -> bool:
        return (await get(api, pid))["waiting_on"] == ["district_epb"]

    await start(api, facts(pid))
    await investigated("第一次")
    assert not await back_at_screening()  # on to the filing review
    wid = workflow_id(pid)
    first = await temporal.client.get_workflow_handle(wid).fetch_history()
    task_done = next(
        e.event_id for e in first.events if e.HasField("workflow_task_completed_event_attributes")
    )
    reset = await temporal.client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=temporal.client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=wid, run_id=first.run_id),
            reason="audit test: back to the first workflow task",
            workflow_task_finish_event_id=task_done,
            request_id=str(uuid.uuid4()),
            # the new run starts over: the actions are answered again, not replayed
            reset_reapply_exclude_types=[
                ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_SIGNAL,
                ResetReapplyExcludeType.RESET_REAPPLY_EXCLUDE_TYPE_UPDATE,
            ],
        )
    )
    await eventually(back_at_screening, f"{pid} waiting on the screening again", timeout=20)
    await investigated("重置后")

    exported = await _export(api, pid, tmp_path)
    history = ParcelHistory.from_json(exported.read_bytes())
    assert [run_id_of(run) for run in history.runs()] == [first.run_id, reset.run_id]
    trail = (await api.get(f"/parcels/{pid}/trail", headers=AUDITOR)).json()
    assert [(r["run_id"], r["status"]) for r in trail["runs"]] == [
        (first.run_id, "terminated"),
        (reset.run_id, "running"),
    ]
    acted = [(a["run"], a["action"], a["status"]) for a in trail["actions"]]
    assert acted == [
        (run, action, "completed")
        for run in (1, 2)
        for action in ("closure_screening", "investigation_report")
    ]
    notes = [a["payload"]["notes"] for a in trail["actions"] if a["action"] == "closure_screening"]
    assert notes == ["第一次", "重置后"]
    for body in (b"", exported.read_bytes()):  # the server's history, then the auditor's copy
        verdict = await api.post(
            f"/parcels/{pid}/replay",
            content=body,
            headers={**AUDITOR, "Content-Type": "application/json"},
        )
        assert verdict.status_code == 200, verdict.text
        assert verdict.json() == {"deterministic": True}
