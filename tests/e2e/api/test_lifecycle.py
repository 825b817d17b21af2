"""Parcels driven end to end through the API on the real dev server."""

from __future__ import annotations

import httpx
from sqlmodel import Session, select

from landflow import registry
from landflow.registry import DecisionRow, ListEntryRow
from tests.helpers import (
    CLEAN_SAMPLES,
    DISTRICT,
    FULL_PATH_STAGES,
    REPORT,
    TRANSPORT,
    act,
    auth,
    chemical_facts,
    clean_facts,
    facts,
    get,
    start,
)


def rules_fired(parcel: dict) -> list[tuple[str, str]]:
    return [(d["rule"], d["outcome"]) for d in parcel["decisions"]]


def stages(parcel: dict) -> list[str]:
    return [v["stage"] for v in parcel["history"]]


async def listed(api: httpx.AsyncClient, name: str, pid: str) -> bool:
    response = await api.get(f"/lists/{name}")  # public: no token
    assert response.status_code == 200
    return any(e["parcel_id"] == pid for e in response.json()["entries"])


async def test_no_investigation_needed_goes_to_release(api, pid):
    started = await start(api, clean_facts(pid))
    assert started["workflow_id"] == f"parcel-{pid}"
    assert (started["stage"], started["waiting_on"]) == ("release", "planning_land")
    parcel = await act(api, pid, "release", {"notes": "商业用地维持原用途"}, "planning_land")
    assert parcel["stage"] == "released"
    assert parcel["waiting_on"] is None and parcel["next_actions"] == []
    assert ("R1", "not_required") in rules_fired(parcel)
    assert all(d["rule"] != "R2" for d in parcel["decisions"])
    assert stages(parcel) == ["intake", "release", "released"]
    assert parcel["history"][1]["by"] == "planning_land:planning_land"


async def test_clean_investigation_is_filed_and_released(api, pid, settings):
    body = facts(pid, enterprise_closed=False, industry="other", polluter=None)
    started = await start(api, body)
    assert (started["stage"], started["waiting_on"]) == ("investigation", "reserve_agency")
    report = {**REPORT, "samples": CLEAN_SAMPLES, "degree": "none found"}
    parcel = await act(api, pid, "investigation_report", report, "reserve_agency")
    assert (parcel["stage"], parcel["waiting_on"]) == ("filing", "city_epb")
    assert ("R5", "negligible") in rules_fired(parcel)
    await act(api, pid, "filing_review", {"decision": "accepted"}, "city_epb")
    parcel = await act(api, pid, "filing_review", {"decision": "accepted"}, "planning_land")
    assert (parcel["stage"], parcel["waiting_on"]) == ("release", "planning_land")
    parcel = await act(api, pid, "release", {}, "planning_land")
    assert stages(parcel) == ["intake", "investigation", "filing", "release", "released"]
    assert not await listed(api, "contaminated", pid)
    # facts come back exactly as submitted, Chinese text included
    assert parcel["facts"] == body


async def test_full_remediation_path_with_loops(api, pid, settings):
    body = facts(pid)
    started = await start(api, body)
    assert (started["stage"], started["waiting_on"]) == ("closure_screening", "district_epb")

    await act(
        api, pid, "closure_screening", {"result": "suspected", "notes": "焦油残留"}, "district_epb"
    )
    parcel = await get(api, pid)
    assert (parcel["stage"], parcel["waiting_on"]) == ("investigation", "reserve_agency")
    assert ("R2", "reserve_agency") in rules_fired(parcel)

    # first filing is returned by the city EPB: back to investigation
    await act(api, pid, "investigation_report", REPORT, "reserve_agency")
    parcel = await act(
        api, pid, "filing_review", {"decision": "returned", "reasons": "采样点位不足"}, "city_epb"
    )
    assert (parcel["stage"], parcel["waiting_on"]) == ("investigation", "reserve_agency")

    await act(api, pid, "investigation_report", REPORT, "reserve_agency")
    await act(api, pid, "filing_review", {"decision": "accepted"}, "city_epb")
    parcel = await act(api, pid, "filing_review", {"decision": "accepted"}, "planning_land")
    assert (parcel["stage"], parcel["waiting_on"]) == ("listing", "district_government")
    assert parcel["listed"] is True
    assert await listed(api, "contaminated", pid) and await listed(api, "negative", pid)
    r5 = [d for d in parcel["decisions"] if d["rule"] == "R5"][-1]
    assert r5["outcome"] == "control_or_remediation" and r5["details"]["land_class"] == 1
    assert r5["citation"].startswith("GB 36600")

    parcel = await act(api, pid, "choose_path", {"path": "remediation"}, "district_government")
    assert (parcel["stage"], parcel["waiting_on"]) == ("remediation", "district_government")
    r4 = [d for d in parcel["decisions"] if d["rule"] == "R4"][-1]
    assert (r4["outcome"], r4["citation"]) == ("district_government", "Law 68")

    await act(
        api,
        pid,
        "remediation_plan",
        {"plan": "热脱附", "contractor": "北京建工环境修复"},
        "district_government",
    )
    parcel = await act(api, pid, "soil_transport", TRANSPORT, "district_government")
    r7 = [d for d in parcel["decisions"] if d["rule"] == "R7"][-1]
    assert r7["details"]["report_to"] == [f"district_epb:{DISTRICT}", "district_epb:大兴区"]
    assert (parcel["stage"], parcel["waiting_on"]) == ("remediation", "district_government")
    parcel = await act(api, pid, "works_completed", {"summary": "完工"}, "district_government")
    assert (parcel["stage"], parcel["waiting_on"]) == ("evaluation", "third_party_evaluator")

    # the contractor may not evaluate its own works (BJ 30; Law 65)
    refused = await act(
        api,
        pid,
        "evaluation",
        {"met": True, "evaluator": "北京建工环境修复"},
        "third_party_evaluator",
        expect=422,
    )
    assert refused["fields"][0]["field"] == "evaluator"

    parcel = await act(
        api, pid, "evaluation", {"met": False, "evaluator": "某评估公司"}, "third_party_evaluator"
    )
    assert (parcel["stage"], parcel["waiting_on"]) == ("remediation", "district_government")
    await act(api, pid, "works_completed", {"summary": "补充修复"}, "district_government")
    parcel = await act(
        api, pid, "evaluation", {"met": True, "evaluator": "某评估公司"}, "third_party_evaluator"
    )
    assert (parcel["stage"], parcel["waiting_on"]) == ("release", "planning_land")
    parcel = await act(api, pid, "release", {}, "planning_land")

    assert parcel["stage"] == "released" and parcel["listed"] is False
    assert stages(parcel) == FULL_PATH_STAGES
    assert [o for r, o in rules_fired(parcel) if r == "R8"] == ["not_met", "met"]
    for decision in parcel["decisions"]:
        assert decision["citation"] and decision["inputs"] is not None
    assert not await listed(api, "contaminated", pid)
    assert not await listed(api, "negative", pid)

    engine = registry.make_engine(settings.database_url)
    with Session(engine) as session:
        entries = session.exec(select(ListEntryRow).where(ListEntryRow.parcel_id == pid)).all()
        assert sorted(e.list_name for e in entries) == ["contaminated", "negative"]
        assert all(e.left_at is not None for e in entries)
        rows = session.exec(select(DecisionRow).where(DecisionRow.parcel_id == pid)).all()
        assert len(rows) == len(parcel["decisions"])
        summary = registry.list_parcels(session, district=DISTRICT, stage="released")
        assert pid in [r.parcel_id for r in summary]


async def test_risk_control_with_diffusion_then_remediation(api, pid):
    await start(api, chemical_facts(pid))
    await act(api, pid, "investigation_report", REPORT, "land_user")
    await act(api, pid, "filing_review", {"decision": "accepted"}, "city_epb")
    await act(api, pid, "filing_review", {"decision": "accepted"}, "planning_land")
    parcel = await act(api, pid, "choose_path", {"path": "risk_control"}, "district_government")
    assert (parcel["stage"], parcel["waiting_on"]) == ("risk_control", "district_government")
    await act(
        api,
        pid,
        "control_measures",
        {"control_zone": "东区", "signs_posted": True, "notice_published": True},
        "district_government",
    )
    parcel = await act(
        api, pid, "monitoring_result", {"diffusion_found": False}, "district_government"
    )
    assert parcel["waiting_on"] == "district_government"
    parcel = await act(
        api, pid, "monitoring_result", {"diffusion_found": True}, "district_government"
    )
    assert (parcel["stage"], parcel["waiting_on"]) == ("risk_control", "land_user")
    # monitoring does not continue before the land user isolates (BJ 19)
    await act(
        api, pid, "monitoring_result", {"diffusion_found": False}, "district_government", expect=409
    )
    await act(api, pid, "isolation_measures", {"measures": "防渗隔离墙"}, "land_user")
    # risk control cannot be chosen again; remediation can
    await act(api, pid, "choose_path", {"path": "risk_control"}, "district_government", expect=422)
    parcel = await act(api, pid, "choose_path", {"path": "remediation"}, "district_government")
    assert (parcel["stage"], parcel["waiting_on"]) == ("remediation", "responsible_party")
    r4 = [d for d in parcel["decisions"] if d["rule"] == "R4"][-1]
    assert (r4["outcome"], r4["details"]["party_name"]) == ("polluter", "某化工厂")


async def test_inbox_lists_waiting_parcels_per_role_and_district(api, pid):
    await start(api, facts(pid))
    mine = await api.get("/tasks", headers=auth("district_epb"))
    other = await api.get("/tasks", headers=auth("district_epb", "海淀区"))
    assert pid in [p["parcel_id"] for p in mine.json()["parcels"]]
    assert pid not in [p["parcel_id"] for p in other.json()["parcels"]]
    deadlines = [p["deadline"] for p in mine.json()["parcels"]]
    assert deadlines == sorted(deadlines)
    listing = await api.get(
        "/parcels", params={"waiting_on": "district_epb", "district": DISTRICT}, headers=auth("ops")
    )
    assert pid in [p["parcel_id"] for p in listing.json()["parcels"]]
