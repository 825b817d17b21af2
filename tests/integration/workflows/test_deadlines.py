"""Durable deadlines, months in seconds (time-skipping): reminder before, escalation and
the Overdue flag at the deadline, cleared by the answer; side tasks have their own."""

from __future__ import annotations

from datetime import timedelta

from tests.helpers import TRANSPORT, facts
from tests.integration.workflows.conftest import Harness
from tests.integration.workflows.drive import RESERVE, RESPONSIBLE, to_works


async def test_an_investigation_is_reminded_then_escalated_then_cleared(harness: Harness, pid: str):
    handle = await harness.start(facts(pid, enterprise_closed=False, industry="other"))
    assert (await harness.state(handle)).blocking().step.value == "investigation"
    await harness.env.sleep(timedelta(days=149))  # reminder at 180 - 30 days
    assert [n.kind for n in harness.recorded.notices] == []
    await harness.env.sleep(timedelta(days=2))
    assert [(n.kind, n.step.value) for n in harness.recorded.notices] == [
        ("reminder", "investigation")
    ]
    await harness.env.sleep(timedelta(days=30))
    kinds = [(n.kind, n.escalate_to) for n in harness.recorded.notices]
    assert kinds[-1][0] == "escalation" and kinds[-1][1].value == "city_epb"
    state = await harness.state(handle)
    assert state.blocking().overdue and harness.recorded.projections[-1].overdue
    samples = harness.samples([{"item": "铅", "value_mg_kg": 50}])
    body = {"extent_m2": 1, "degree": "none"}
    await harness.act(
        handle,
        "investigation_report",
        RESERVE,
        body,
        samples=samples,
        documents=["investigation_report"],
    )
    latest = harness.recorded.projections[-1]
    assert not latest.overdue and latest.stage.value == "filing"
    assert len([n for n in harness.recorded.notices if n.kind == "escalation"]) == 1


async def test_a_transport_acknowledgement_has_its_own_deadline_and_does_not_hold_the_works(
    harness: Harness, pid: str
):
    handle = await harness.start(facts(pid, enterprise_closed=False, industry="other"))
    await to_works(harness, handle)
    await harness.act(
        handle, "soil_transport", RESPONSIBLE, TRANSPORT, documents=["transport_plan"]
    )
    await harness.env.sleep(timedelta(days=6))  # the acknowledgement is due in 5 days
    escalated = [n for n in harness.recorded.notices if n.kind == "escalation"]
    assert [n.step.value for n in escalated] == ["transport_acknowledgement"]
    state = await harness.state(handle)
    assert state.blocking().step.value == "works" and not state.blocking().overdue
