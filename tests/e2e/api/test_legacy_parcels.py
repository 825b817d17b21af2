"""Parcels started on the first procedure (`ParcelWorkflow`, before the law's chain) finish
on the steps they started with, through today's API, beside new parcels."""

from __future__ import annotations

from landflow.messages import LEGACY_PARCEL_WORKFLOW, workflow_id
from tests.helpers import act, auth, get

FIRST_FACTS = {  # the facts as the first release took them (no party ids)
    "name": "原北京焦化厂",
    "district": "朝阳区",
    "area_m2": 1_400_000,
    "current_use": "industrial",
    "industry": "coking",
    "enterprise_closed": True,
    "right_status": "recovered",
    "planned_use": "residential",
    "polluter": {"name": "北京焦化厂", "status": "exists", "is_former_right_holder": True},
}


async def test_a_parcel_of_the_first_procedure_finishes_on_it(api, temporal, settings, pid):
    handle = await temporal.client.start_workflow(
        LEGACY_PARCEL_WORKFLOW,
        {**FIRST_FACTS, "parcel_id": pid},
        id=workflow_id(pid),
        task_queue=settings.task_queue,
    )
    await handle.execute_update("started")
    parcel = await get(api, pid)
    assert (parcel["procedure"], parcel["stage"]) == (LEGACY_PARCEL_WORKFLOW, "closure_screening")
    assert parcel["next_actions"][0]["action"] == "closure_screening"
    await act(api, pid, "closure_screening", {"result": "cleared"}, "district_epb")
    # the first procedure's report: samples inline, a risk verdict in the report
    report = {"samples": [{"item": "铅", "value_mg_kg": 50}], "extent_m2": 1, "degree": "none"}
    await act(api, pid, "investigation_report", report, "reserve_agency")
    # its filing review was sequential: the planning bureau before its turn is refused
    await act(api, pid, "filing_review", {"decision": "accepted"}, "planning_land", expect=409)
    await act(api, pid, "filing_review", {"decision": "accepted"}, "city_epb")
    await act(api, pid, "filing_review", {"decision": "accepted"}, "planning_land")
    outcome = await act(api, pid, "release", {}, "planning_land")
    assert outcome["stage"] == "released"
    parcel = await get(api, pid)
    assert [v["stage"] for v in parcel["history"]] == [
        "intake",
        "closure_screening",
        "investigation",
        "filing",
        "release",
        "released",
    ]
    assert (await handle.describe()).workflow_type == LEGACY_PARCEL_WORKFLOW
    replay = await api.post(f"/parcels/{pid}/replay", headers=auth("auditor"))
    assert replay.json() == {"deterministic": True}
