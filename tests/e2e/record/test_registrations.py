"""Runs are first-class: a released id registered again has its own lists and decisions;
an abnormally ended parcel is a state the API knows and needs an explicit restart."""

from __future__ import annotations

from tests.helpers import (
    ACCEPTED,
    DIRTY_SAMPLES,
    TARGETS,
    act,
    auth,
    cite,
    clean_facts,
    facts,
    get,
    start,
)


def _listed_facts(pid: str) -> dict:
    return facts(pid, enterprise_closed=False, industry="other")


async def _listed(api, pid: str, started: bool = False) -> None:
    """Drive a parcel to the contaminated list (started here unless `started`)."""
    if not started:
        await start(api, _listed_facts(pid))
    documents = await cite(api, pid, "investigation_report", "reserve_agency")
    body = {"samples": DIRTY_SAMPLES, "extent_m2": 1, "degree": "x", "documents": documents}
    await act(api, pid, "investigation_report", body, "reserve_agency")
    await act(api, pid, "filing_review", ACCEPTED, "city_epb")
    await act(api, pid, "filing_review", ACCEPTED, "planning_land")
    documents = await cite(api, pid, "risk_assessment_report", "responsible_party")
    assessment = {
        "acceptable": False,
        "targets": TARGETS,
        "recommendation": "remediation",
        "documents": documents,
    }
    await act(api, pid, "risk_assessment_report", assessment, "responsible_party")
    await act(api, pid, "risk_assessment_review", ACCEPTED, "city_epb")
    await act(api, pid, "risk_assessment_review", ACCEPTED, "planning_land")


async def _entries(api, name: str, pid: str) -> list[dict]:
    response = await api.get(f"/lists/{name}", params={"q": pid, "include_left": True})
    return [e for e in response.json()["entries"] if e["parcel_id"] == pid]


async def test_a_released_id_registered_again_keeps_the_lists_right(api, pid):
    await start(api, clean_facts(pid))
    await act(api, pid, "release", {}, "planning_land")
    first = (await get(api, pid))["run_id"]
    await _listed(api, pid)  # the same id, registered again, listed this time
    second = await get(api, pid)
    assert second["run_id"] != first and second["listed"]
    current = [e for e in await _entries(api, "contaminated", pid) if e["left_at"] is None]
    assert len(current) == 1
    decisions = (await api.get(f"/parcels/{pid}/decisions", headers=auth("auditor"))).json()
    assert decisions["run_id"] == second["run_id"]
    assert {d["rule"] for d in decisions["decisions"]} >= {"R5", "R4", "R11"}
    older = (
        await api.get(f"/parcels/{pid}/decisions", params={"run": first}, headers=auth("auditor"))
    ).json()
    assert {d["rule"] for d in older["decisions"]} == {"R3", "R6", "R1"}
    runs = (await api.get(f"/parcels/{pid}/runs", headers=auth("auditor"))).json()["runs"]
    assert [(r["run_id"], r["current"]) for r in runs] == [(first, False), (second["run_id"], True)]


async def test_a_terminated_parcel_is_known_refused_and_restarted_explicitly(api, temporal, pid):
    await start(api, facts(pid))
    handle = temporal.client.get_workflow_handle(f"parcel-{pid}")
    await handle.terminate(reason="operator error")
    parcel = await get(api, pid)
    assert (parcel["status"], parcel["next_actions"], parcel["waiting_on"]) == (
        "terminated",
        [],
        [],
    )
    refused = await act(
        api, pid, "closure_screening", {"result": "cleared"}, "district_epb", expect=409
    )
    assert refused["error"] == "ParcelClosed" and "terminated" in refused["detail"]
    again = await api.post("/parcels", json=facts(pid), headers=auth("reserve_agency"))
    assert (again.status_code, again.json()["error"]) == (409, "PreviousRunAbnormal")
    restart = {"reason": "registered in error, data corrected", "facts": facts(pid)}
    started = await api.post(
        f"/parcels/{pid}/restart", json=restart, headers=auth("reserve_agency")
    )
    assert started.status_code == 201, started.text
    parcel = await get(api, pid)
    assert parcel["status"] == "running" and parcel["restart_of"]
    trail = (await api.get(f"/parcels/{pid}/trail", headers=auth("auditor"))).json()
    assert trail["runs"][0]["status"] == "terminated"
    assert trail["runs"][-1]["restart"]["reason"] == restart["reason"]
