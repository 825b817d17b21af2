"""A parcel under risk control for thirty years, monitored yearly: the history stays
small per run, continues as new, and every year's deadline is still kept (time-skipping)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import WorkflowExecutionStatus

from tests.helpers import facts
from tests.integration.workflows.conftest import POLICY, Harness, running
from tests.integration.workflows.drive import RESPONSIBLE, to_monitoring
from workflows.history import fetch_history

YEAR = timedelta(days=365)


async def test_thirty_years_of_yearly_monitoring(time_skipping, pid: str):
    # A run continues as new every few years (the Java test server also ends a run after
    # ten years, which a real server never does).
    budget = POLICY.history.model_copy(update={"continue_as_new_after_events": 150})
    async with running(time_skipping, POLICY.model_copy(update={"history": budget})) as harness:
        await _thirty_years(harness, pid)


async def _thirty_years(harness: Harness, pid: str) -> None:
    handle = await harness.start(facts(pid, enterprise_closed=False, industry="other"))
    await to_monitoring(harness, handle)
    for year in range(30):
        await harness.env.sleep(YEAR - timedelta(days=20))  # reminded 30 days before
        late = year % 10 == 9
        if late:
            await harness.env.sleep(timedelta(days=30))  # one report in ten comes late
        await harness.act(
            handle,
            "monitoring_result",
            RESPONSIBLE,
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
