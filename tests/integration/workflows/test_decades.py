"""A parcel under risk control for thirty years, monitored yearly: the history stays
small per run, continues as new, and every year's deadline is still kept (time-skipping)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus

from tests.helpers import facts
from tests.integration.workflows.conftest import POLICY, Harness, running
from workflows.history import fetch_history

POLLUTER = {"role": "responsible_party", "party": "91110105POLLUTER01"}
YEAR = timedelta(days=365)


async def _to_monitoring(harness: Harness, handle) -> None:
    reserve = {"role": "reserve_agency"}
    samples = harness.samples([{"item": "苯并[a]芘", "value_mg_kg": 8.5}])
    await harness.act(
        handle,
        "investigation_report",
        reserve,
        {"extent_m2": 1, "degree": "x"},
        samples=samples,
        documents=["investigation_report"],
    )
    for bureau in ("city_epb", "planning_land"):
        await harness.act(handle, "filing_review", {"role": bureau}, {"decision": "accepted"})
    assessment = {
        "acceptable": False,
        "targets": [{"item": "苯并[a]芘", "target_mg_kg": 0.5}],
        "recommendation": "risk_control",
    }
    await harness.act(
        handle, "risk_assessment_report", POLLUTER, assessment, documents=["risk_assessment_report"]
    )
    for bureau in ("city_epb", "planning_land"):
        await harness.act(
            handle, "risk_assessment_review", {"role": bureau}, {"decision": "accepted"}
        )
    government = {"role": "district_government", "district": "朝阳区"}
    await harness.act(handle, "choose_path", government, {"path": "risk_control"})
    measures = {"control_zone": "东区", "signs_posted": True, "notice_published": True}
    await harness.act(handle, "control_measures", government, measures)


async def test_thirty_years_of_yearly_monitoring(time_skipping, pid: str):
    # A run continues as new every few years (the Java test server also ends a run after
    # ten years, which a real server never does).
    budget = POLICY.history.model_copy(update={"continue_as_new_after_events": 150})
    async with running(time_skipping, POLICY.model_copy(update={"history": budget})) as harness:
        await _thirty_years(harness, pid)


async def _thirty_years(harness: Harness, pid: str) -> None:
    handle = await harness.start(facts(pid, enterprise_closed=False, industry="other"))
    await _to_monitoring(harness, handle)
    for year in range(30):
        await harness.env.sleep(YEAR - timedelta(days=20))  # reminded 30 days before
        late = year % 10 == 9
        if late:
            await harness.env.sleep(timedelta(days=30))  # one report in ten comes late
        await harness.act(
            handle,
            "monitoring_result",
            POLLUTER,
            {"diffusion_found": False, "notes": f"第{year + 1}年"},
        )
    state = await harness.state(handle)
    assert len([a for a in state.actions if a.action.value == "monitoring_result"]) == 30
    escalations = [n for n in harness.recorded.notices if n.kind == "escalation"]
    assert len(escalations) == 3
    history = await fetch_history(harness.client, pid)
    runs = history.runs()
    sizes = [sum(e.ByteSize() for e in run) for run in runs]
    print(
        f"30 years of monitoring: {len(history.events)} events, "
        f"{sum(sizes):,} bytes in {len(runs)} run(s)"
    )
    assert sum(sizes) < 2 * 2**20, "thirty years must stay far under the 10 MB warning"
    assert len(runs) >= 3 and state.runs == len(runs)
    description = await harness.client.get_workflow_handle(handle.id).describe()
    assert description.status == WorkflowExecutionStatus.RUNNING
