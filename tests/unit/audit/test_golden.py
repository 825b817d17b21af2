"""Golden histories: today's workflow code replays every committed history, of both
procedures; a tampered history fails naming the event; the trail reads them. No server."""

from __future__ import annotations

import asyncio
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
    from audit.cli import audit_app
    from audit.replay import replay
    from audit.trail import build_trail
    from landflow.messages import PARCEL_WORKFLOW, ParcelStart
    from landflow.state import ParcelState
    from workflows.history import ParcelHistory
    from workflows.parcel import ParcelWorkflow

# The sandbox re-imports this module (it defines workflows): let it read the directory.
with workflow.unsafe.sandbox_unrestricted():
    HISTORIES = Path(__file__).resolve().parents[2] / "histories"
    LEGACY = sorted((HISTORIES / "legacy").glob("*.json"))
    CURRENT = sorted((HISTORIES / "v2").glob("*.json"))
    GOLDEN = LEGACY + CURRENT


def golden(name: str) -> ParcelHistory:
    return ParcelHistory.from_json((HISTORIES / "v2" / f"{name}.json").read_bytes())


def test_every_path_has_a_golden_history():
    assert {p.stem for p in LEGACY} == {
        "no_investigation_release",
        "full_remediation_loops",
        "risk_control_remediation",
    }
    assert {p.stem for p in CURRENT} == {
        "no_investigation_release",
        "full_remediation_chain",
        "determination_land_user",
        "risk_control_removal",
        "amended_remediation",
        "isolation_by_the_manager",
        "key_unit_transfer",
    }


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.stem}")
async def test_golden_history_replays(path: Path):
    history = ParcelHistory.from_json(path.read_bytes())
    verdict = await replay(history)
    assert verdict.deterministic, verdict
    assert history.canonical() == path.read_bytes()  # the file is the canonical form


# --- a history that was tampered with -------------------------------------------------


def _events() -> list[dict[str, Any]]:
    return copy.deepcopy(golden("full_remediation_chain").to_dict()["events"])


def _scheduled(events: list[dict[str, Any]], activity: str, nth: int = 0) -> int:
    found = [
        i
        for i, e in enumerate(events)
        if e["eventType"] == "EVENT_TYPE_ACTIVITY_TASK_SCHEDULED"
        and e["activityTaskScheduledEventAttributes"]["activityType"]["name"] == activity
    ]
    return found[nth]


def removed_decision() -> tuple[dict[str, Any], int]:
    events = _events()
    index = _scheduled(events, "rules.decide")
    del events[index]
    return {"events": events}, index + 1


def renamed_activity() -> tuple[dict[str, Any], int]:
    events = _events()
    index = _scheduled(events, "rules.decide", 1)
    events[index]["activityTaskScheduledEventAttributes"]["activityType"]["name"] = (
        "registry.project"
    )
    return {"events": events}, int(events[index]["eventId"])


def swapped_events() -> tuple[dict[str, Any], int]:
    events = _events()
    index = _scheduled(events, "rules.decide")
    events[index], events[index + 1] = events[index + 1], events[index]
    return {"events": events}, index + 1


TAMPERED = {"removed": removed_decision, "renamed": renamed_activity, "swapped": swapped_events}


@pytest.mark.parametrize("how", TAMPERED)
async def test_tampered_history_fails_replay_naming_the_event(how: str):
    tampered, culprit = TAMPERED[how]()
    verdict = await replay(ParcelHistory.from_json(tampered))
    assert not verdict.deterministic
    assert verdict.event_id is not None and verdict.error
    # the verdict points at the tampered spot, or at an event of the same workflow task
    # (the core reports the command it could not match, which may come a few events on)
    assert culprit <= verdict.event_id <= culprit + 6, (culprit, verdict)


def test_an_open_history_cut_mid_task_gets_a_verdict() -> None:
    """An export of a running parcel may end between a task's events (ENGINE-NOTES.md)."""
    events = _events()
    cut = next(
        i
        for i, e in enumerate(events)
        if e["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED"
    )
    history = ParcelHistory.from_json({"events": events[: cut + 1]})
    assert asyncio.run(replay(history)).deterministic


# --- the CLI, offline -----------------------------------------------------------------

runner = CliRunner()


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_cli_replay_file_exits_zero_for_golden(path: Path):
    result = runner.invoke(audit_app, ["replay", "--file", str(path)])
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
    path = HISTORIES / "v2" / "full_remediation_chain.json"
    result = runner.invoke(audit_app, ["trail", "--file", str(path)])
    assert result.exit_code == 0, result.output
    assert hashlib.sha256(path.read_bytes()).hexdigest() in result.output
    assert "原北京焦化厂" in result.output and "采样点不足" in result.output
    assert "R8 v2" in result.output and "cites investigation_report" in result.output


# --- the trail of the law's chain ------------------------------------------------------


def test_trail_of_the_full_remediation_chain():
    trail = build_trail(golden("full_remediation_chain"))
    assert trail.status == "completed" and trail.stage == "released"
    reviews = [
        (a.action, a.role, a.payload["decision"])
        for a in trail.actions
        if a.action.endswith("review") and "decision" in a.payload
    ]
    assert ("filing_review", "planning_land", "returned") in reviews
    assert {r[1] for r in reviews} == {"city_epb", "planning_land", "district_epb"}
    assert all(a.signed for a in trail.actions)
    assert [d.outcome for d in trail.decisions if d.rule == "R8"] == ["not_met", "met"]
    assert [d.outcome for d in trail.decisions if d.rule == "R11"] == ["listed"]
    assert {(c.list_name, c.change) for c in trail.list_changes} == {
        ("suspected", "enter"),
        ("suspected", "leave"),
        ("contaminated", "enter"),
        ("contaminated", "leave"),
        ("negative", "enter"),
        ("negative", "leave"),
    }
    kinds = [n.kind for n in trail.notices]
    assert kinds.count("evaluation_published") == 2 and "removal_published" in kinds
    assert "spot_check_draw" in kinds
    transport = next(a for a in trail.actions if a.action == "soil_transport")
    assert transport.documents[0].kind == "transport_plan"
    for decision in trail.decisions:
        assert (
            decision.status == "completed"
            and decision.citation
            and decision.version
            and decision.row
        )


def test_trail_of_a_determination_says_where_the_law_won():
    trail = build_trail(golden("determination_land_user"))
    r4 = [d for d in trail.decisions if d.rule == "R4"]
    assert [d.outcome for d in r4] == ["determination_required", "land_user"]
    assert r4[-1].citation == "Law 45 ¶1" and "BJ 28" in (r4[-1].law_over_plan or "")
    determinations = [a for a in trail.actions if a.action == "responsibility_determination"]
    assert [a.role for a in determinations] == ["city_epb", "planning_land"]


def test_trail_of_risk_control_with_reminder_escalation_and_overdue_flag():
    trail = build_trail(golden("risk_control_removal"))
    deadline = [
        (n.kind, n.step, n.role, n.escalate_to)
        for n in trail.notices
        if n.kind in ("reminder", "escalation")
    ]
    assert deadline == [
        ("reminder", "monitoring", "responsible_party", None),
        ("escalation", "monitoring", "responsible_party", "district_epb"),
    ]
    assert [f.overdue for f in trail.overdue_flags] == [True, False]
    assert ("isolation_measures", "land_user") in [(a.action, a.role) for a in trail.actions]
    assert "remediation" not in [s.stage for s in trail.stages]


def test_trail_of_a_parcel_under_the_amendments():
    """A failed spot-check, a revised plan, a returned removal review (Law 66 ¶2): every
    action names the step it answered and its clause."""
    trail = build_trail(golden("amended_remediation"))
    assert trail.status == "completed" and trail.stage == "released"
    assert all(a.step and a.clause for a in trail.actions)
    returned = [
        (a.step, a.role, a.clause)
        for a in trail.actions
        if isinstance(a.payload, dict) and a.payload.get("decision") == "returned"
    ]
    assert returned == [("removal_review", "planning_land", "Law 66 ¶2")]
    spot_checks = [a.payload["result"] for a in trail.actions if a.action == "spot_check"]
    assert spot_checks == ["not_met", "met", "met"]
    stages = [s.stage for s in trail.stages]
    assert stages.index("release") < len(stages) - stages[::-1].index("remediation") - 1


def test_trail_of_the_law_67_notice_and_of_isolation_by_the_manager():
    notices = [n.kind for n in build_trail(golden("key_unit_transfer")).notices]
    assert notices.count("real_estate_registry") == 1
    trail = build_trail(golden("isolation_by_the_manager"))
    assert trail.status == "running"
    assert ("isolation_measures", "reserve_agency", "isolation") in [
        (a.action, a.role, a.step) for a in trail.actions
    ]


def test_trail_hash_is_the_sha256_of_the_file():
    for path in GOLDEN:
        trail = build_trail(ParcelHistory.from_json(path.read_bytes()))
        assert trail.history_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# --- changing the workflow: unguarded vs behind workflow.patched -----------------------

PATCH_ID = "audit-test-grace-period"


@workflow.defn(name=PARCEL_WORKFLOW)
class UnguardedChange(ParcelWorkflow):
    @workflow.run
    async def run(self, start: ParcelStart) -> ParcelState:
        await workflow.sleep(timedelta(days=1))
        return await super().run(start)


@workflow.defn(name=PARCEL_WORKFLOW)
class PatchedChange(ParcelWorkflow):
    @workflow.run
    async def run(self, start: ParcelStart) -> ParcelState:
        if workflow.patched(PATCH_ID):
            await workflow.sleep(timedelta(days=1))
        return await super().run(start)


@pytest.mark.parametrize("path", CURRENT, ids=lambda p: p.stem)
async def test_unguarded_change_fails_replay(path: Path):
    verdict = await replay(ParcelHistory.from_json(path.read_bytes()), workflows=[UnguardedChange])
    assert not verdict.deterministic and "Nondeterminism" in (verdict.error or "")


@pytest.mark.parametrize("path", CURRENT, ids=lambda p: p.stem)
async def test_the_same_change_behind_patched_replays(path: Path):
    verdict = await replay(ParcelHistory.from_json(path.read_bytes()), workflows=[PatchedChange])
    assert verdict.deterministic, verdict
