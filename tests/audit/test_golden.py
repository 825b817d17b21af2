"""Golden histories: today's workflow code must replay every committed lifecycle path.

No server here: replay and trail read nothing but the files in tests/histories.
The variant workflows below stand for a maintainer's next change to ParcelWorkflow,
once without and once behind `workflow.patched`.
"""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from typer.testing import CliRunner

with workflow.unsafe.imports_passed_through():
    from landflow.audit import ParcelHistory, build_trail, replay
    from landflow.audit_cli import audit_app
    from landflow.contracts import ParcelFacts, ParcelState
    from tests.helpers import FULL_PATH_STAGES
    from workflows.parcel import ParcelWorkflow

# The sandbox re-imports this module (it defines workflows): let it read the directory.
with workflow.unsafe.sandbox_unrestricted():
    HISTORIES = Path(__file__).resolve().parents[1] / "histories"
    GOLDEN = sorted(HISTORIES.glob("*.json"))
PATHS = {
    "no_investigation_release",
    "full_remediation_loops",
    "risk_control_remediation",
}


def golden(name: str) -> ParcelHistory:
    return ParcelHistory.from_json((HISTORIES / f"{name}.json").read_bytes())


def test_every_lifecycle_path_has_a_golden_history():
    assert {p.stem for p in GOLDEN} == PATHS


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
async def test_golden_history_replays(path: Path):
    history = ParcelHistory.from_json(path.read_bytes())
    verdict = await replay(history)
    assert verdict.deterministic, verdict
    # the committed file is the canonical form, so its bytes are what the hash covers
    assert history.canonical() == path.read_bytes()


# --- a history that was tampered with -------------------------------------------------


def _events(name: str) -> list[dict[str, Any]]:
    return copy.deepcopy(golden(name).to_dict()["events"])


def _first(events: list[dict[str, Any]], event_type: str, activity: str | None = None) -> int:
    for index, event in enumerate(events):
        attrs = event.get("activityTaskScheduledEventAttributes", {})
        if event["eventType"] == event_type and (
            activity is None or attrs.get("activityType", {}).get("name") == activity
        ):
            return index
    raise AssertionError(f"no {event_type} {activity or ''}")


def removed_decision() -> tuple[dict[str, Any], int]:
    """The first rule decision's scheduling event is cut out of the history."""
    events = _events("full_remediation_loops")
    index = _first(events, "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED", "decide")
    del events[index]
    return {"events": events}, index + 1


def reordered_decisions() -> tuple[dict[str, Any], int]:
    """Two rule decisions swapped (R3 and R6), every event id left in sequence."""
    events = _events("full_remediation_loops")
    first = _first(events, "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED", "decide")
    later = _first(events[first + 1 :], "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED", "decide")
    second = first + 1 + later
    key = "activityTaskScheduledEventAttributes"
    events[first][key], events[second][key] = events[second][key], events[first][key]
    return {"events": events}, int(events[first]["eventId"])


def swapped_events() -> tuple[dict[str, Any], int]:
    """A rule decision's scheduling event moved after the event that followed it."""
    events = _events("full_remediation_loops")
    index = _first(events, "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED", "decide")
    events[index], events[index + 1] = events[index + 1], events[index]
    return {"events": events}, index + 1


TAMPERED = {
    "removed": removed_decision,
    "reordered": reordered_decisions,
    "swapped": swapped_events,
}


@pytest.mark.parametrize("how", TAMPERED)
async def test_tampered_history_fails_replay_naming_the_event(how: str):
    tampered, culprit = TAMPERED[how]()
    verdict = await replay(ParcelHistory.from_json(tampered))
    assert not verdict.deterministic
    assert verdict.event_id is not None and verdict.error
    # the verdict points at the tampered spot (the next event once one is missing)
    assert culprit <= verdict.event_id <= culprit + 1, (culprit, verdict)


# --- the CLI, offline -----------------------------------------------------------------

runner = CliRunner()


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_cli_replay_file_exits_zero_for_golden(path: Path):
    wid = ParcelHistory.from_json(path.read_bytes()).workflow_id()
    result = runner.invoke(audit_app, ["replay", "--file", str(path), "--workflow-id", wid])
    assert result.exit_code == 0, result.output
    assert "replays deterministically" in result.output


@pytest.mark.parametrize("how", TAMPERED)
def test_cli_replay_file_fails_for_tampered(how: str, tmp_path: Path):
    tampered, _ = TAMPERED[how]()
    file = tmp_path / "tampered.json"
    file.write_text(json.dumps(tampered), encoding="utf-8")
    result = runner.invoke(audit_app, ["replay", "--file", str(file)])
    assert result.exit_code == 1
    assert "does NOT replay at event" in result.output


def test_cli_replay_refuses_a_file_that_is_not_a_history(tmp_path: Path):
    file = tmp_path / "nothing.json"
    file.write_text('{"parcels": []}', encoding="utf-8")
    result = runner.invoke(audit_app, ["replay", "--file", str(file)])
    assert result.exit_code == 2
    assert '{"events": [...]}' in result.output


def test_cli_trail_file_prints_the_record():
    path = HISTORIES / "full_remediation_loops.json"
    result = runner.invoke(audit_app, ["trail", "--file", str(path)])
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(path.read_bytes()).hexdigest() in result.output
    assert "原北京焦化厂" in result.output
    assert "filing_review by city_epb" in result.output and "采样点位不足" in result.output
    assert "R8 v1" in result.output


# --- the trail from each golden history -----------------------------------------------


def test_trail_of_release_without_investigation():
    trail = build_trail(golden("no_investigation_release"))
    assert trail.status == "completed" and trail.stage == "released"
    assert [s.stage for s in trail.stages] == ["intake", "release", "released"]
    assert [(a.action, a.role, a.stage_after) for a in trail.actions] == [
        ("release", "planning_land", "released")
    ]
    assert trail.actions[0].payload == {"notes": "商业用地维持原用途"}
    assert [(d.rule, d.outcome) for d in trail.decisions] == [
        ("R3", "not_required"),
        ("R6", "not_required"),
        ("R1", "not_required"),
    ]
    assert trail.notices == [] and trail.overdue_flags == [] and trail.list_changes == []


def test_trail_of_full_remediation_with_loops():
    trail = build_trail(golden("full_remediation_loops"))
    assert [s.stage for s in trail.stages] == FULL_PATH_STAGES
    returned = [a for a in trail.actions if a.payload.get("decision") == "returned"]
    assert [(a.role, a.stage_after) for a in returned] == [("city_epb", "investigation")]
    assert [a.action for a in trail.actions].count("soil_transport") == 1
    evaluations = [(a.subject, a.payload["met"]) for a in trail.actions if a.action == "evaluation"]
    assert evaluations == [("某评估公司", False), ("某评估公司", True)]
    assert [d.outcome for d in trail.decisions if d.rule == "R8"] == ["not_met", "met"]
    r7 = next(d for d in trail.decisions if d.rule == "R7")
    assert r7.context["transport"]["destination_district"] == "大兴区"
    for decision in trail.decisions:
        assert decision.status == "completed" and decision.citation and decision.version
        assert decision.row and decision.inputs
    assert [c.change for c in trail.list_changes] == ["enter", "leave"]
    # every visit but the last was left, by the actor whose action moved the parcel on
    assert all(v.left and v.by for v in trail.stages[:-1])
    assert trail.stages[1].by == "district_epb:district_epb@朝阳区"


def test_trail_of_risk_control_with_reminder_escalation_and_overdue_flag():
    trail = build_trail(golden("risk_control_remediation"))
    assert "risk_control" in [s.stage for s in trail.stages]
    assert [(n.kind, n.step, n.role, n.escalate_to) for n in trail.notices] == [
        ("reminder", "monitoring", "district_government", None),
        ("escalation", "monitoring", "district_government", "district_epb"),
    ]
    assert [(f.overdue, f.stage) for f in trail.overdue_flags] == [
        (True, "risk_control"),
        (False, "risk_control"),
    ]
    escalated_at = trail.notices[1].at
    assert trail.overdue_flags[0].at <= escalated_at
    actions = [(a.action, a.role) for a in trail.actions]
    assert ("isolation_measures", "land_user") in actions
    diffusion = next(a for a in trail.actions if a.action == "monitoring_result")
    assert diffusion.payload == {"diffusion_found": True}
    assert trail.stage == "released"


def test_trail_hash_is_the_sha256_of_the_file():
    for path in GOLDEN:
        trail = build_trail(ParcelHistory.from_json(path.read_bytes()))
        assert trail.history_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_trail_hash_ignores_formatting_but_not_content():
    """A copy re-indented by another tool hashes the same; one changed value does not."""
    path = HISTORIES / "no_investigation_release.json"
    original = build_trail(ParcelHistory.from_json(path.read_bytes()))
    reformatted = json.dumps(json.loads(path.read_bytes()), indent=4)
    assert build_trail(ParcelHistory.from_json(reformatted)).history_sha256 == (
        original.history_sha256
    )
    edited = json.loads(path.read_bytes())
    edited["events"][0]["eventTime"] = "2000-01-01T00:00:00Z"
    assert build_trail(ParcelHistory.from_json(edited)).history_sha256 != (original.history_sha256)


# --- changing the workflow: unguarded vs behind workflow.patched -----------------------
# Both variants insert a timer at the start of run, as a maintainer might ("wait a
# day before the first decision"). Registered under the same name, as a deploy would.

PATCH_ID = "audit-test-grace-period"


@workflow.defn(name="ParcelWorkflow")
class UnguardedChange(ParcelWorkflow):
    @workflow.run
    async def run(self, facts: ParcelFacts) -> ParcelState:
        await workflow.sleep(timedelta(days=1))
        return await super().run(facts)


@workflow.defn(name="ParcelWorkflow")
class PatchedChange(ParcelWorkflow):
    @workflow.run
    async def run(self, facts: ParcelFacts) -> ParcelState:
        if workflow.patched(PATCH_ID):
            await workflow.sleep(timedelta(days=1))
        return await super().run(facts)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
async def test_unguarded_change_fails_replay(path: Path):
    verdict = await replay(ParcelHistory.from_json(path.read_bytes()), workflows=[UnguardedChange])
    assert not verdict.deterministic
    assert "Nondeterminism" in (verdict.error or "")
    # the first command of run (load_policy) no longer matches: its scheduled event
    history = ParcelHistory.from_json(path.read_bytes())
    first_activity = next(
        e.event_id for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
    )
    assert verdict.event_id == first_activity


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
async def test_the_same_change_behind_patched_replays(path: Path):
    verdict = await replay(ParcelHistory.from_json(path.read_bytes()), workflows=[PatchedChange])
    assert verdict.deterministic, verdict
