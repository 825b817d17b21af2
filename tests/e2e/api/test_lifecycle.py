"""Parcels driven through the law's whole chain by the API, on the real dev server."""

from __future__ import annotations

import httpx
import pytest
from sqlmodel import Session, select

from registry.engine import make_engine
from registry.tables import DecisionRow, ListEntryRow, TaskRow
from tests.helpers import (
    ACCEPTED,
    CLEAN_SAMPLES,
    CONTRACTOR,
    DIRTY_SAMPLES,
    EVALUATOR,
    MET_RESULTS,
    NEW_CONTRACTOR,
    RETURNED,
    TARGETS,
    TRANSPORT,
    act,
    auth,
    cite,
    clean_facts,
    facts,
    get,
    start,
)
from tests.helpers import (
    LAND_USER as LAND_USER_FACTS,
)
from tests.helpers import (
    POLLUTER as POLLUTER_FACTS,
)


def rules_fired(parcel: dict) -> list[tuple[str, str]]:
    return [(d["rule"], d["outcome"]) for d in parcel["decisions"]]


def stages(parcel: dict) -> list[str]:
    return [v["stage"] for v in parcel["history"]]


async def on_list(api: httpx.AsyncClient, name: str, pid: str) -> bool:
    response = await api.get(f"/lists/{name}", params={"q": pid})  # public: no token
    assert response.status_code == 200, response.text
    return any(e["parcel_id"] == pid for e in response.json()["entries"])


async def report(
    api: httpx.AsyncClient, pid: str, samples: list[dict], role: str = "reserve_agency"
) -> dict:
    documents = await cite(api, pid, "investigation_report", role)
    body = {"samples": samples, "extent_m2": 50_000, "degree": "heavy", "documents": documents}
    return await act(api, pid, "investigation_report", body, role)


async def test_no_investigation_needed_goes_to_release(api, pid):
    started = await start(api, clean_facts(pid))
    assert started["workflow_id"] == f"parcel-{pid}"
    assert (started["stage"], started["waiting_on"]) == ("release", ["planning_land"])
    assert [a["action"] for a in started["next_actions"]] == ["release"]
    outcome = await act(api, pid, "release", {"notes": "商业用地维持原用途"}, "planning_land")
    assert (outcome["stage"], outcome["status"], outcome["waiting_on"]) == (
        "released",
        "released",
        [],
    )
    parcel = await get(api, pid)
    assert ("R1", "not_required") in rules_fired(parcel)
    assert all(d["rule"] != "R2" for d in parcel["decisions"])
    assert stages(parcel) == ["intake", "release", "released"]
    assert parcel["history"][1]["by"] == "planning_land:planning_land"


async def test_the_registrations_answer_means_the_inbox_lists_its_first_step(api, pid, settings):
    """201 with the step's next actions, and at that moment the registry already holds
    the step (the started update waits for the first projection), read straight away."""
    engine = make_engine(settings.database_url)
    try:
        for n in range(5):  # the race it closes lost about one registration in three
            code = f"{pid}-{n}"
            started = await start(api, clean_facts(code))
            assert [a["action"] for a in started["next_actions"]] == ["release"]
            with Session(engine) as session:
                rows = session.exec(select(TaskRow).where(TaskRow.parcel_id == code)).all()
            assert [(r.step, r.role) for r in rows] == [("release", "planning_land")], code
    finally:
        engine.dispose()


@pytest.mark.parametrize("first", ["city_epb", "planning_land"])
async def test_joint_review_in_either_order_then_release(api, pid, first):
    await start(api, facts(pid, enterprise_closed=False, industry="other"))
    outcome = await report(api, pid, CLEAN_SAMPLES)
    assert (outcome["stage"], outcome["step"]) == ("filing", "filing_review")
    assert sorted(outcome["waiting_on"]) == ["city_epb", "planning_land"]
    second = "planning_land" if first == "city_epb" else "city_epb"
    outcome = await act(api, pid, "filing_review", ACCEPTED, first)
    assert (outcome["stage"], outcome["waiting_on"]) == ("filing", [second])
    # the bureau that answered cannot answer the same visit twice
    await act(api, pid, "filing_review", ACCEPTED, first, expect=409)
    outcome = await act(api, pid, "filing_review", ACCEPTED, second)
    assert (outcome["stage"], outcome["waiting_on"]) == ("release", ["planning_land"])
    await act(api, pid, "release", {}, "planning_land")
    parcel = await get(api, pid)
    assert stages(parcel) == ["intake", "investigation", "filing", "release", "released"]
    assert ("R5", "negligible") in rules_fired(parcel)
    assert not await on_list(api, "contaminated", pid)


async def test_full_remediation_chain_with_loops(api, pid, settings):
    started = await start(api, facts(pid))
    assert (started["stage"], started["waiting_on"]) == ("closure_screening", ["district_epb"])
    await act(
        api, pid, "closure_screening", {"result": "suspected", "notes": "焦油残留"}, "district_epb"
    )
    assert await on_list(api, "suspected", pid)
    # the investigation is returned once by the planning bureau (one return is enough)
    await report(api, pid, DIRTY_SAMPLES)
    outcome = await act(api, pid, "filing_review", RETURNED, "planning_land")
    assert (outcome["stage"], outcome["waiting_on"]) == ("investigation", ["reserve_agency"])
    await report(api, pid, DIRTY_SAMPLES)
    await act(api, pid, "filing_review", ACCEPTED, "city_epb")
    outcome = await act(api, pid, "filing_review", ACCEPTED, "planning_land")
    assert (outcome["stage"], outcome["waiting_on"]) == ("risk_assessment", ["responsible_party"])
    # the polluter (R4) assesses the risk; a company that is not the polluter may not
    documents = await cite(api, pid, "risk_assessment_report", "responsible_party")
    assessment = {
        "acceptable": False,
        "targets": TARGETS,
        "recommendation": "remediation",
        "documents": documents,
    }
    await act(
        api,
        pid,
        "risk_assessment_report",
        assessment,
        "responsible_party",
        "91110105OTHERCO001",
        expect=403,
    )
    await act(api, pid, "risk_assessment_report", assessment, "responsible_party")
    await act(api, pid, "risk_assessment_review", ACCEPTED, "planning_land")
    outcome = await act(api, pid, "risk_assessment_review", ACCEPTED, "city_epb")
    assert (outcome["stage"], outcome["waiting_on"]) == ("listing", ["district_government"])
    assert await on_list(api, "contaminated", pid) and await on_list(api, "negative", pid)
    assert not await on_list(api, "suspected", pid)
    await act(api, pid, "choose_path", {"path": "remediation"}, "district_government")
    plan = {
        "plan": "热脱附",
        "contractor": CONTRACTOR,
        "notice_board": True,
        "documents": await cite(api, pid, "remediation_plan", "responsible_party"),
    }
    await act(api, pid, "remediation_plan", plan, "responsible_party")
    outcome = await act(
        api, pid, "plan_filing_review", {"decision": "acknowledged"}, "district_epb"
    )
    assert (outcome["stage"], outcome["step"]) == ("remediation", "works")
    transport = {
        **TRANSPORT,
        "documents": await cite(api, pid, "transport_plan", "responsible_party"),
    }
    outcome = await act(api, pid, "soil_transport", transport, "responsible_party")
    assert outcome["step"] == "works"  # a transport does not end the works
    # both district EPBs find the acknowledgement in their inboxes
    for district in ("朝阳区", "大兴区"):
        inbox = (await api.get("/tasks", headers=auth("district_epb", district))).json()
        assert any(
            t["parcel_id"] == pid and t["step"] == "transport_acknowledgement"
            for t in inbox["tasks"]
        )
    await act(api, pid, "transport_acknowledgement", {}, "district_epb", "大兴区")
    await act(api, pid, "works_completed", {"summary": "完工"}, "responsible_party")
    await act(
        api, pid, "commission_evaluator", {"party": CONTRACTOR}, "responsible_party", expect=422
    )
    await act(api, pid, "commission_evaluator", {"party": EVALUATOR}, "responsible_party")
    failing = [{"item": "苯并[a]芘", "value_mg_kg": 2.0}, {"item": "铅", "value_mg_kg": 200}]
    evaluation = {
        "met": True,
        "results": failing,
        "documents": await cite(api, pid, "effect_evaluation_report", "third_party_evaluator"),
    }
    outcome = await act(api, pid, "evaluation", evaluation, "third_party_evaluator")
    assert (outcome["stage"], outcome["step"]) == (
        "remediation",
        "works",
    )  # R8: figures over target
    # after a failed evaluation a revised plan with a new contractor may be filed
    plan = {
        **plan,
        "contractor": NEW_CONTRACTOR,
        "documents": await cite(api, pid, "remediation_plan", "responsible_party"),
    }
    await act(api, pid, "remediation_plan", plan, "responsible_party")
    await act(api, pid, "plan_filing_review", {"decision": "acknowledged"}, "district_epb")
    await act(api, pid, "works_completed", {}, "responsible_party")
    await act(api, pid, "commission_evaluator", {"party": EVALUATOR}, "responsible_party")
    evaluation = {
        "met": True,
        "results": MET_RESULTS,
        "documents": await cite(api, pid, "effect_evaluation_report", "third_party_evaluator"),
    }
    outcome = await act(api, pid, "evaluation", evaluation, "third_party_evaluator")
    if outcome["step"] == "spot_check":
        outcome = await act(api, pid, "spot_check", {"result": "met"}, "city_epb")
    assert (outcome["stage"], outcome["step"]) == ("release", "removal_application")
    await act(api, pid, "removal_application", {}, "responsible_party")
    await act(api, pid, "removal_review", ACCEPTED, "city_epb")
    outcome = await act(api, pid, "removal_review", ACCEPTED, "planning_land")
    assert outcome["waiting_on"] == ["planning_land"]
    assert not await on_list(api, "contaminated", pid)
    outcome = await act(api, pid, "release", {}, "planning_land")
    assert outcome["status"] == "released"
    parcel = await get(api, pid)
    assert stages(parcel)[:6] == [
        "intake",
        "closure_screening",
        "investigation",
        "filing",
        "investigation",
        "filing",
    ]
    assert [r for r, _ in rules_fired(parcel)].count("R8") == 2
    assert parcel["parties"]["contractor"]["id"] == NEW_CONTRACTOR["id"]
    assert parcel["parties"]["past_contractors"][0]["id"] == CONTRACTOR["id"]
    engine = make_engine(settings.database_url)
    with Session(engine) as session:
        rows = session.exec(select(DecisionRow).where(DecisionRow.parcel_id == pid)).all()
        assert len(rows) == len(parcel["decisions"])
        assert not session.exec(
            select(TaskRow).where(TaskRow.parcel_id == pid, TaskRow.blocking)
        ).all()
        lists = session.exec(select(ListEntryRow).where(ListEntryRow.parcel_id == pid)).all()
        assert {e.list_name for e in lists} == {"suspected", "contaminated", "negative"}
        assert all(e.left_at is not None for e in lists)
    engine.dispose()


async def _to_risk_assessment(
    api: httpx.AsyncClient,
    pid: str,
    samples: list[dict],
    investigator: str = "reserve_agency",
    **overrides,
) -> None:
    await start(api, facts(pid, enterprise_closed=False, industry="other", **overrides))
    await report(api, pid, samples, investigator)
    await act(api, pid, "filing_review", ACCEPTED, "city_epb")
    await act(api, pid, "filing_review", ACCEPTED, "planning_land")


async def _assess(
    api: httpx.AsyncClient, pid: str, role: str, scope: str | None = None, **body
) -> dict:
    documents = await cite(api, pid, "risk_assessment_report", role, scope)
    await act(api, pid, "risk_assessment_report", {**body, "documents": documents}, role, scope)
    await act(api, pid, "risk_assessment_review", ACCEPTED, "city_epb")
    return await act(api, pid, "risk_assessment_review", ACCEPTED, "planning_land")


async def test_acceptable_risk_is_released_never_listed(api, pid):
    await _to_risk_assessment(api, pid, [{"item": "苯并[a]芘", "value_mg_kg": 1.0}])
    outcome = await _assess(api, pid, "responsible_party", acceptable=True)
    assert (outcome["stage"], outcome["waiting_on"]) == ("release", ["planning_land"])
    parcel = await get(api, pid)
    assert ("R11", "not_listed") in rules_fired(parcel)
    assert "listing" not in stages(parcel)
    assert not await on_list(api, "contaminated", pid)


async def test_above_intervention_is_listed_whatever_the_report_says(api, pid):
    await _to_risk_assessment(api, pid, DIRTY_SAMPLES)
    # Listed whatever it concludes, the report must give what the evaluation is held to.
    documents = await cite(api, pid, "risk_assessment_report", "responsible_party")
    refused = await act(
        api,
        pid,
        "risk_assessment_report",
        {"acceptable": True, "documents": documents},
        "responsible_party",
        expect=422,
    )
    assert {f["field"] for f in refused["fields"]} == {"targets", "recommendation"}
    outcome = await _assess(
        api,
        pid,
        "responsible_party",
        acceptable=True,
        targets=TARGETS,
        recommendation="remediation",
    )
    assert outcome["stage"] == "listing"
    assert [t["item"] for t in (await get(api, pid))["targets"]] == [t["item"] for t in TARGETS]
    decision = next(d for d in (await get(api, pid))["decisions"] if d["rule"] == "R11")
    assert (decision["outcome"], decision["row"]) == ("listed", "R11.1")
    assert "GB 36600 5.3.3" in decision["citation"]
    assert await on_list(api, "contaminated", pid)


async def test_risk_control_ends_in_removal_without_remediation(api, pid):
    await _to_risk_assessment(api, pid, DIRTY_SAMPLES)
    await _assess(
        api,
        pid,
        "responsible_party",
        acceptable=False,
        targets=TARGETS,
        recommendation="risk_control",
    )
    await act(api, pid, "choose_path", {"path": "risk_control"}, "district_government")
    measures = {"control_zone": "焦化厂东区", "signs_posted": True, "notice_published": True}
    await act(
        api,
        pid,
        "control_measures",
        {**measures, "signs_posted": False},
        "district_government",
        expect=422,
    )
    await act(api, pid, "control_measures", measures, "district_government")
    await act(api, pid, "monitoring_result", {"diffusion_found": False}, "responsible_party")
    outcome = await act(
        api, pid, "risk_control_completed", {"summary": "目标达到"}, "responsible_party"
    )
    assert (outcome["stage"], outcome["step"]) == ("evaluation", "commission_evaluator")
    await act(api, pid, "commission_evaluator", {"party": EVALUATOR}, "responsible_party")
    documents = await cite(api, pid, "effect_evaluation_report", "third_party_evaluator")
    outcome = await act(
        api,
        pid,
        "evaluation",
        {"met": True, "results": MET_RESULTS, "documents": documents},
        "third_party_evaluator",
    )
    if outcome["step"] == "spot_check":
        outcome = await act(api, pid, "spot_check", {"result": "met"}, "city_epb")
    assert outcome["step"] == "removal_application"
    await act(api, pid, "removal_application", {}, "responsible_party")
    await act(api, pid, "removal_review", ACCEPTED, "planning_land")
    await act(api, pid, "removal_review", ACCEPTED, "city_epb")
    outcome = await act(api, pid, "release", {}, "planning_land")
    parcel = await get(api, pid)
    assert "remediation" not in stages(parcel)
    assert stages(parcel)[-4:] == ["risk_control", "evaluation", "release", "released"]
    assert parcel["disclosure"]["evaluation_result"] == "met"
    assert parcel["disclosure"]["removal_published_at"]


async def test_unknown_polluter_determined_by_the_bureaus(api, pid):
    await _to_risk_assessment(api, pid, DIRTY_SAMPLES, polluter={"status": "unknown"})
    parcel = await get(api, pid)
    assert parcel["next_actions"][0]["action"] == "responsibility_determination"
    documents = await cite(api, pid, "determination", "city_epb")
    named = {
        "outcome": "named",
        "polluter": {**POLLUTER_FACTS, "status": "exists"},
        "documents": documents,
    }
    await act(api, pid, "responsibility_determination", named, "city_epb")
    outcome = await act(api, pid, "responsibility_determination", named, "planning_land")
    assert (outcome["step"], outcome["waiting_on"]) == ("risk_assessment", ["responsible_party"])
    r4 = [d for d in (await get(api, pid))["decisions"] if d["rule"] == "R4"]
    assert [d["outcome"] for d in r4] == ["determination_required", "polluter"]


async def test_undetermined_polluter_falls_to_the_land_user(api, pid):
    await _to_risk_assessment(
        api,
        pid,
        DIRTY_SAMPLES,
        polluter={"status": "disputed", "name": "某厂"},
        investigator="land_user",
        right_status="held",
        land_user=LAND_USER_FACTS,
    )
    documents = await cite(api, pid, "determination", "city_epb")
    undetermined = {"outcome": "undetermined", "reasons": "无法认定", "documents": documents}
    await act(api, pid, "responsibility_determination", undetermined, "city_epb")
    outcome = await act(api, pid, "responsibility_determination", undetermined, "planning_land")
    assert outcome["waiting_on"] == ["land_user"]
    r4 = [d for d in (await get(api, pid))["decisions"] if d["rule"] == "R4"][-1]
    assert (r4["outcome"], r4["row"], r4["citation"]) == ("land_user", "R4.2", "Law 45 ¶1")
    assert "BJ 28" in r4["law_over_plan"]
    # another company's land-user token is refused and changes nothing
    documents = await cite(api, pid, "risk_assessment_report", "land_user")
    body = {
        "acceptable": False,
        "targets": TARGETS,
        "recommendation": "remediation",
        "documents": documents,
    }
    await act(
        api, pid, "risk_assessment_report", body, "land_user", "91110105OTHERCO001", expect=403
    )
    assert (await get(api, pid))["stage"] == "risk_assessment"
    await act(api, pid, "risk_assessment_report", body, "land_user")


async def test_parties_show_the_responsible_party_under_both_names(api, pid):
    """`parties` as issue 11 names them (`responsible_party`), `responsible` kept."""
    await _to_risk_assessment(api, pid, DIRTY_SAMPLES, land_user=LAND_USER_FACTS)
    parties = (await get(api, pid))["parties"]
    assert {"land_user", "responsible_party", "contractor", "evaluator"} <= set(parties)
    assert parties["land_user"] == LAND_USER_FACTS
    assert parties["responsible_party"] == parties["responsible"] == POLLUTER_FACTS
    assert parties["responsible_role"] == "responsible_party"
    assert parties["contractor"] is None and parties["evaluator"] is None


async def to_risk_control(api: httpx.AsyncClient, pid: str) -> None:
    """A listed parcel under risk control with its measures taken: monitoring is open."""
    await _to_risk_assessment(api, pid, DIRTY_SAMPLES)
    await _assess(
        api,
        pid,
        "responsible_party",
        acceptable=False,
        targets=TARGETS,
        recommendation="risk_control",
    )
    await act(api, pid, "choose_path", {"path": "risk_control"}, "district_government")
    zone = {"control_zone": "东区", "signs_posted": True, "notice_published": True}
    await act(api, pid, "control_measures", zone, "district_government")
