"""The action inbox's invariants (workflows/inbox.py), one test each, on the time-skipping
server with the activities replaced: the real workflow, its real inbox and gate."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError

from tests.helpers import facts
from tests.integration.workflows.conftest import POLICY, Harness, running
from tests.integration.workflows.drive import ACCEPTED, BUREAUS, RESERVE, RESPONSIBLE, to_monitoring

SCREENING = {"role": "district_epb", "district": "朝阳区", "subject": "朝阳分局"}


async def refused(call) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as failure:
        await call
    return str(getattr(failure.value.cause, "type", None))


async def test_1_each_assignee_answers_a_visit_once(harness: Harness, pid: str):
    """Concurrent answers to one visit: exactly one applied, the rest refused; in a joint
    review each bureau gives one opinion."""
    handle = await harness.start(facts(pid))
    answers = await asyncio.gather(
        *(
            harness.act(handle, "closure_screening", SCREENING, {"result": result})
            for result in ("suspected", "cleared", "suspected")
        ),
        return_exceptions=True,
    )
    applied = [a for a in answers if not isinstance(a, BaseException)]
    assert len(applied) == 1 and all(
        isinstance(a, WorkflowUpdateFailedError) for a in answers if a not in applied
    )
    state = await harness.state(handle)
    assert [a.action.value for a in state.actions] == ["closure_screening"]
    samples = harness.samples([{"item": "苯并[a]芘", "value_mg_kg": 8.5}])
    await harness.act(
        handle,
        "investigation_report",
        RESERVE,
        {"extent_m2": 1, "degree": "x"},
        samples=samples,
        documents=["investigation_report"],
    )
    city = BUREAUS[0]
    await harness.act(handle, "filing_review", city, ACCEPTED)
    assert await refused(harness.act(handle, "filing_review", city, ACCEPTED)) == "WrongStage"
    reviews = [
        a for a in (await harness.state(handle)).actions if a.action.value == "filing_review"
    ]
    assert [a.role.value for a in reviews] == ["city_epb"]


async def test_2_a_refused_action_changes_nothing(harness: Harness, pid: str):
    """Out of role, of district, of stage or of shape: no event, no state change."""
    handle = await harness.start(facts(pid))
    with harness.env.auto_time_skipping_disabled():  # no deadline fires meanwhile
        before_state = await harness.state(handle)
        before = await _recorded(handle)
        attempts = [
            ("closure_screening", {"role": "public"}, {"result": "suspected"}),
            ("closure_screening", {"role": "district_epb", "district": "海淀区"}, {"result": "x"}),
            ("release", {"role": "planning_land"}, {}),
            ("closure_screening", SCREENING, {"result": "perhaps"}),
        ]
        kinds = [await refused(harness.act(handle, *attempt)) for attempt in attempts]
        assert kinds == ["WrongRole", "WrongDistrict", "WrongStage", "InvalidBody"]
        # The Java test server writes each update's workflow task, even a rejected one
        # (a real server drops them; tests/e2e/security checks it there): compare the rest.
        assert await _recorded(handle) == before
        assert await harness.state(handle) == before_state


async def _recorded(handle) -> list[int]:
    """The types of the history's events but the workflow tasks'."""
    tasks = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    }
    events = (await handle.fetch_history()).events
    return [e.event_type for e in events if e.event_type not in tasks]


async def test_3_an_answer_comes_once_the_parcel_has_moved_on(harness: Harness, pid: str):
    """The reply, the state query and the last projection agree the moment it answers."""
    handle = await harness.start(facts(pid))
    outcome = await harness.act(handle, "closure_screening", SCREENING, {"result": "suspected"})
    state = await harness.state(handle)
    projection = harness.recorded.projections[-1]
    assert outcome.answered is not None and outcome.answered.value == "closure_screening"
    assert (outcome.stage, outcome.step) == (state.stage, state.blocking().step)
    assert (projection.stage, projection.tasks[0].step) == (state.stage, state.blocking().step)
    assert outcome.visit == 1 and state.blocking().visit == 2


async def test_4_reminder_and_escalation_once_per_visit_across_continue_as_new(
    time_skipping, pid: str
):
    """A run continues as new while the monitoring step's deadline runs: the new run keeps
    the visit's deadline and its flags, so nothing is sent twice."""
    budget = POLICY.history.model_copy(update={"continue_as_new_after_events": 120})
    async with running(time_skipping, POLICY.model_copy(update={"history": budget})) as harness:
        handle = await harness.start(facts(pid, enterprise_closed=False, industry="other"))
        await to_monitoring(harness, handle)
        for note in range(3):  # pushes the run past its budget: it continues as new
            await harness.act(
                handle,
                "monitoring_result",
                RESPONSIBLE,
                {"diffusion_found": False, "notes": f"{note}"},
            )
        state = await harness.state(handle)
        assert state.runs > 1, "the run did not continue as new"
        visit = state.blocking().visit
        await harness.env.sleep(timedelta(days=400))  # past the reminder and the deadline
        sent = [
            (n.kind, n.step.value if n.step else None)
            for n in harness.recorded.notices
            if n.kind in ("reminder", "escalation")
        ]
        assert sent == [("reminder", "monitoring"), ("escalation", "monitoring")]
        state = await harness.state(handle)
        assert state.blocking().visit == visit and state.blocking().overdue


async def test_5_a_parcel_continues_as_new_only_between_actions(time_skipping, pid: str):
    """Actions racing the continue-as-new are each applied once, in one run or the next."""
    budget = POLICY.history.model_copy(update={"continue_as_new_after_events": 100})
    async with running(time_skipping, POLICY.model_copy(update={"history": budget})) as harness:
        handle = await harness.start(facts(pid, enterprise_closed=False, industry="other"))
        await to_monitoring(harness, handle)
        notes = [f"report {n}" for n in range(6)]
        for note in notes:  # one at a time: each report answers the monitoring visit
            await harness.act(
                handle, "monitoring_result", RESPONSIBLE, {"diffusion_found": False, "notes": note}
            )
        state = await harness.state(handle)
        reports = [a for a in state.actions if a.action.value == "monitoring_result"]
        assert len(reports) == len(notes) and state.runs > 1
        assert len({a.seq for a in state.actions}) == len(state.actions)
