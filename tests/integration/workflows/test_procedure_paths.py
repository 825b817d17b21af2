"""Paths of the law's chain the end-to-end suite does not take, on the time-skipping
server with the activities replaced (the rules are the real tables): a failed spot-check,
diffusion on land with no land user bound, a returned removal review, the Law 67 notice,
and the trail naming every review with its clause."""

from __future__ import annotations

from temporalio.client import WorkflowHandle

from audit.trail import build_trail
from landflow.procedure import Amendment
from tests.helpers import NEW_CONTRACTOR, RETURNED, facts, held_facts
from tests.integration.workflows.conftest import POLICY, Harness, running
from tests.integration.workflows.drive import (
    ACCEPTED,
    BUREAUS,
    DISTRICT_EPB,
    GOVERNMENT,
    PLAN,
    RESERVE,
    RESPONSIBLE,
    evaluated,
    review,
    to_monitoring,
    to_works,
)
from workflows.history import ParcelHistory

ALWAYS_SPOT_CHECKED = POLICY.model_copy(update={"spot_check_share": 1.0})
NEVER_SPOT_CHECKED = POLICY.model_copy(update={"spot_check_share": 0.0})


def open_step(outcome) -> tuple[str, str | None]:
    return outcome.stage.value, outcome.step.value if outcome.step else None


async def test_a_failed_spot_check_sends_the_works_back_and_a_revised_plan_may_follow(
    time_skipping, pid: str
):
    """BJ 30 抽查: like a failed evaluation, a failed spot-check reopens the works, where a
    revised plan with a new contractor is filed with the district EPB again (Law 64)."""
    async with running(time_skipping, ALWAYS_SPOT_CHECKED) as harness:
        handle = await harness.start(facts(pid, enterprise_closed=False, industry="other"))
        await to_works(harness, handle)
        await harness.act(handle, "works_completed", RESPONSIBLE, {"summary": "完工"})
        outcome = await evaluated(harness, handle)
        assert open_step(outcome) == ("evaluation", "spot_check")
        draws = [n for n in harness.recorded.notices if n.kind == "spot_check_draw"]
        assert [n.details["drawn"] for n in draws] == [True]
        outcome = await harness.act(
            handle, "spot_check", {"role": "city_epb"}, {"result": "not_met", "notes": "复测超标"}
        )
        assert open_step(outcome) == ("remediation", "works")
        revised = {**PLAN, "contractor": NEW_CONTRACTOR}
        outcome = await harness.act(
            handle, "remediation_plan", RESPONSIBLE, revised, documents=["remediation_plan"]
        )
        assert open_step(outcome) == ("remediation", "plan_filing")
        await harness.act(handle, "plan_filing_review", DISTRICT_EPB, {"decision": "acknowledged"})
        state = await harness.state(handle)
        assert state.parties.contractor is not None
        assert state.parties.contractor.id == NEW_CONTRACTOR["id"]
        assert [p.id for p in state.parties.past_contractors] != []


async def test_diffusion_on_recovered_land_is_isolated_by_the_reserve_agency(
    harness: Harness, pid: str
):
    """BJ 19: 土地使用权人或管理人. Recovered land has no land user bound; the reserve agency,
    which holds it, owes the isolation (a workflow with no one to owe it failed its task)."""
    handle = await harness.start(facts(pid, enterprise_closed=False, industry="other"))
    await to_monitoring(harness, handle)
    outcome = await harness.act(handle, "monitoring_result", RESPONSIBLE, {"diffusion_found": True})
    assert open_step(outcome) == ("risk_control", "isolation")
    assert [r.value for r in outcome.waiting_on] == ["reserve_agency"]
    outcome = await harness.act(
        handle, "isolation_measures", RESERVE, {"measures": "阻隔墙", "completed_on": "2027-05-01"}
    )
    assert open_step(outcome) == ("risk_control", "monitoring")


async def _to_removal_review(harness: Harness, handle: WorkflowHandle) -> None:
    await to_works(harness, handle)
    await harness.act(handle, "works_completed", RESPONSIBLE, {"summary": "完工"})
    outcome = await evaluated(harness, handle)
    assert open_step(outcome) == ("release", "removal_application")
    await harness.act(handle, "removal_application", RESPONSIBLE, {})


async def test_a_returned_removal_review_reopens_the_works_and_a_new_evaluation(
    time_skipping, pid: str
):
    """Law 66 ¶2: only parcels shown to meet their targets leave the list; a return by
    either bureau is like a failed evaluation."""
    async with running(time_skipping, NEVER_SPOT_CHECKED) as harness:
        handle = await harness.start(facts(pid, enterprise_closed=False, industry="other"))
        await _to_removal_review(harness, handle)
        outcome = await harness.act(handle, "removal_review", {"role": "planning_land"}, RETURNED)
        assert open_step(outcome) == ("remediation", "works")
        state = await harness.state(handle)
        assert Amendment.removal_return_reopens_works.value in state.amendments
        assert state.listed, "still on the list"
        await harness.act(handle, "works_completed", RESPONSIBLE, {"summary": "补充修复"})
        outcome = await evaluated(harness, handle)
        assert open_step(outcome) == ("release", "removal_application")
        await harness.act(handle, "removal_application", RESPONSIBLE, {})
        await review(harness, handle, "removal_review")
        outcome = await harness.act(handle, "release", {"role": "planning_land"}, {})
        assert outcome.status == "released"
        state = await harness.state(handle)
        assert [d.outcome for d in state.decisions if d.rule == "R8"] == ["met", "met"]
        assert not state.listed


async def test_a_key_supervised_units_transfer_sends_the_report_to_the_real_estate_registry(
    harness: Harness, pid: str
):
    """Law 67: before a key supervised unit's land is transferred, the land user
    investigates and the report goes with the real-estate registration records."""
    land_user = {"role": "land_user", "party": "91110105LANDUSER01"}
    handle = await harness.start(
        held_facts(pid, key_supervised_unit=True, planned_use="industrial")
        | {
            "right_status": "transferred",
            "transferee": {"id": "91110105TRANSFER01", "name": "受让"},
        }
    )
    samples = harness.samples([{"item": "铅", "value_mg_kg": 50.0}])
    await harness.act(
        handle,
        "investigation_report",
        land_user,
        {"extent_m2": 1, "degree": "none"},
        samples=samples,
        documents=["investigation_report"],
    )
    assert not [n for n in harness.recorded.notices if n.kind == "real_estate_registry"]
    await review(harness, handle, "filing_review")
    sent = [n for n in harness.recorded.notices if n.kind == "real_estate_registry"]
    assert len(sent) == 1 and len(sent[0].details["documents"]) == 1
    r1 = next(d for d in (await harness.state(handle)).decisions if d.rule == "R1")
    assert "Law 67" in r1.citation


async def test_the_trail_names_every_review_its_opinion_who_gave_it_and_the_clause(
    time_skipping, pid: str
):
    """A released listed parcel's trail, from its history alone: each joint review's two
    opinions, by whom, on which step, under which clause (issue 11, "Done when")."""
    async with running(time_skipping, NEVER_SPOT_CHECKED) as harness:
        handle = await harness.start(facts(pid, enterprise_closed=False, industry="other"))
        await _to_removal_review(harness, handle)
        await review(harness, handle, "removal_review")
        await harness.act(handle, "release", {"role": "planning_land"}, {})
        # One run; describe() on the Java test server cannot read a cleared DeadlineAt.
        events = (await handle.fetch_history()).events
        trail = build_trail(ParcelHistory(list(events)))
    clauses = {
        "filing_review": "BJ 17; Law 59 ¶3",
        "risk_assessment_review": "Law 61",
        "removal_review": "Law 66 ¶2",
    }
    for action, clause in clauses.items():
        opinions = [a for a in trail.actions if a.action == action]
        assert sorted(a.role for a in opinions) == sorted(b["role"] for b in BUREAUS)
        assert all(a.step == action and a.clause == clause for a in opinions), opinions
        assert {a.subject for a in opinions} == {b["subject"] for b in BUREAUS}
        assert all(a.payload == ACCEPTED and a.signed for a in opinions)
    assert all(a.clause for a in trail.actions), [a.action for a in trail.actions if not a.clause]
    choose = next(a for a in trail.actions if a.action == "choose_path")
    assert (choose.step, choose.role) == ("choose_path", GOVERNMENT["role"])


async def test_a_registration_names_its_amendments_without_writing_them_into_its_history(
    harness: Harness, pid: str
):
    """The amendments ride in the start input: no patch marker or search-attribute upsert
    per amendment, and no upsert of attributes that are unset anyway (quiet intake)."""
    handle = await harness.start(facts(pid))
    state = await harness.state(handle)
    assert state.amendments == [a.value for a in Amendment]
    events = (await handle.fetch_history()).events
    assert not [e for e in events if e.HasField("marker_recorded_event_attributes")]
    upserts = [
        dict(e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields)
        for e in events
        if e.HasField("upsert_workflow_search_attributes_event_attributes")
    ]
    assert [sorted(u) for u in upserts] == [["Assignees", "DeadlineAt", "Stage", "WaitingOn"]]
