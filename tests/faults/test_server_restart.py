"""Stop the Temporal dev server (persistent database) while a deadline is pending: the
timers fire after the restart, reminders and escalations are recorded once, the parcel
is flagged overdue, and it carries on.

Deadlines shrink to seconds with a policy copy: a step lasts 13 s and its reminder
comes 8.6 s before the end. The server goes down (SIGTERM) before the reminder is due and
comes back after; then down again (SIGKILL) before the deadline, back after it.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session
from temporalio.client import Client

from landflow import registry
from tests.faults.conftest import MakeStack, Stack, fast_policy
from tests.faults.procs import eventually
from tests.helpers import act, facts, get, start

pytestmark = pytest.mark.faults

DAYS, REMIND_DAYS_BEFORE = 0.00015, 0.0001  # 12.96 s; the reminder after 4.32 s
MARGIN = timedelta(seconds=0.5)


def notices(stack: Stack, pid: str) -> list[tuple[str, str]]:
    with Session(registry.make_engine(stack.settings.database_url)) as session:
        return [(n.step, n.kind) for n in registry.notices_for(session, parcel_id=pid)]


async def timers_fired(client: Client, pid: str) -> list[datetime]:
    history = await client.get_workflow_handle(f"parcel-{pid}").fetch_history()
    return [
        e.event_time.ToDatetime(tzinfo=UTC)
        for e in history.events
        if e.HasField("timer_fired_event_attributes")
    ]


async def down_until(stack: Stack, sig: signal.Signals, moment: datetime) -> datetime:
    """Stop the server with `sig` before `moment`, restart it after; returns when it was back."""
    now = datetime.now(UTC)
    assert now < moment - MARGIN, f"the test is too slow: {moment - now} left before the timer"
    stack.server.stop(sig)
    await asyncio.sleep((moment + MARGIN - datetime.now(UTC)).total_seconds())
    restarted = datetime.now(UTC)
    stack.server.start()
    await stack.server.connect()
    return restarted


async def overdue_in_visibility(client: Client, pid: str) -> bool:
    query = f'ParcelId="{pid}" AND Overdue=true'
    return bool([w async for w in client.list_workflows(query)])


async def test_timers_fire_after_the_server_restarts(
    make_stack: MakeStack, pid: str, tmp_path: Path
):
    stack = await make_stack(policy_file=fast_policy(tmp_path, DAYS, REMIND_DAYS_BEFORE))
    api = stack.api
    started = await start(api, facts(pid))
    assert started["waiting_on"] == "district_epb"
    deadline = datetime.fromisoformat(started["deadline"])
    remind_at = deadline - timedelta(days=REMIND_DAYS_BEFORE)

    back = await down_until(stack, signal.SIGTERM, remind_at)
    await eventually(lambda: asyncio.to_thread(notices, stack, pid), "the reminder", 30)
    assert notices(stack, pid) == [("closure_screening", "reminder")]

    back_again = await down_until(stack, signal.SIGKILL, deadline)
    await eventually(
        lambda: asyncio.to_thread(lambda: len(notices(stack, pid)) == 2), "the escalation", 30
    )
    assert notices(stack, pid) == [
        ("closure_screening", "reminder"),
        ("closure_screening", "escalation"),
    ]
    reminder, escalation = await timers_fired(stack.client, pid)
    assert back < reminder < back_again < escalation  # each fired after its restart

    parcel = await get(api, pid)
    assert parcel["overdue"] is True and parcel["waiting_on"] == "district_epb"
    await eventually(lambda: overdue_in_visibility(stack.client, pid), "Overdue in visibility")
    with Session(registry.make_engine(stack.settings.database_url)) as session:
        overdue = registry.list_parcels(session, overdue=True)
    assert [r.parcel_id for r in overdue] == [pid]

    # The parcel carries on, with a fresh deadline for its next step.
    parcel = await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")
    assert (parcel["stage"], parcel["waiting_on"], parcel["overdue"]) == (
        "investigation",
        "reserve_agency",
        False,
    )
    assert datetime.fromisoformat(parcel["deadline"]) > datetime.now(UTC)
