"""Stop the dev server (persistent database) while deadlines are pending: the timers fire
after each restart, the reminder and the escalation are recorded once, the parcel is
overdue in the registry, the API and visibility, and it carries on.

The policy shrinks the closure screening to seconds of real time: the reminder comes
REMIND_S after the step opens, the deadline DEADLINE_S after. The server goes down
(SIGTERM) at least MARGIN_S before the reminder and comes back MARGIN_S after it; then
down again (SIGKILL) at least MARGIN_S before the deadline, back MARGIN_S after it.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from landflow.messages import NOTIFY
from registry.tables import NoticeRow, ParcelRow
from tests.e2e.faults.conftest import (
    Move,
    Stack,
    eventually,
    perform,
    prepare,
    read_parcel,
    send,
    start_parcel,
)
from tests.helpers import auth, facts

pytestmark = pytest.mark.faults

REMIND_S, DEADLINE_S, MARGIN_S = 10.0, 40.0, 4.0  # 22 s for a restart and the reminder
DAY_S = 86_400
STACK = {
    "policy": {
        "steps": {
            "closure_screening": {
                "days": DEADLINE_S / DAY_S,
                "remind_days_before": (DEADLINE_S - REMIND_S) / DAY_S,
            }
        }
    }
}


def notices(stack: Stack, pid: str) -> list[tuple[str | None, str, str | None]]:
    with stack.registry() as session:
        rows = session.exec(
            select(NoticeRow).where(NoticeRow.parcel_id == pid).order_by(NoticeRow.at)
        ).all()
    return [(n.step, n.kind, n.escalate_to) for n in rows]


async def notices_scheduled(stack: Stack, pid: str) -> list[datetime]:
    """When the history scheduled each notice. Not the timers: a reminder whose completion
    the SIGKILL lost is retried after the restart, and when that is past the deadline the
    escalation follows it at once, without a timer of its own."""
    client = await stack.temporal()
    history = await client.get_workflow_handle(f"parcel-{pid}").fetch_history()
    return [
        e.event_time.ToDatetime(tzinfo=UTC)
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == NOTIFY.name
    ]


async def down_across(stack: Stack, sig: signal.Signals, moment: datetime) -> datetime:
    """Stop the server with `sig` before `moment`, start it again after; returns when the
    restart began (no timer of it can have fired earlier)."""
    left = (moment - datetime.now(UTC)).total_seconds()
    assert left > MARGIN_S, f"too slow: {left:.1f}s before the timer, {MARGIN_S}s needed"
    await stack.kill("temporal", sig)
    left = (moment - datetime.now(UTC)).total_seconds()
    assert left > 1, f"the server took until {left:.1f}s before the timer to stop"
    await asyncio.sleep(left + MARGIN_S)
    restarting = datetime.now(UTC)
    await stack.start("temporal")
    return restarting


async def overdue_everywhere(stack: Stack, pid: str) -> dict[str, Any]:
    """Overdue as the API, the registry and visibility each say it."""
    parcel = await read_parcel(stack.http, pid)
    listing = await send(
        stack.http, "GET", "/parcels", params={"overdue": "true"}, headers=auth("ops")
    )
    with stack.registry() as session:
        row = session.exec(select(ParcelRow).where(ParcelRow.parcel_id == pid)).one()
    client = await stack.temporal()
    query = f'ParcelId="{pid}" AND Overdue=true'
    return {
        "api": parcel["overdue"],
        "api list": pid in [p["parcel_id"] for p in listing.json()["parcels"]],
        "registry": row.overdue,
        "visibility": bool([w async for w in client.list_workflows(query)]),
    }


async def test_timers_fire_after_the_server_restarts(stack: Stack, pid: str):
    started = await start_parcel(stack.http, facts(pid))
    assert (started["stage"], started["waiting_on"]) == ("closure_screening", ["district_epb"])
    deadline = datetime.fromisoformat(started["deadline"])
    remind_at = deadline - timedelta(seconds=DEADLINE_S - REMIND_S)

    first_restart = await down_across(stack, signal.SIGTERM, remind_at)

    async def reminded() -> bool:
        return bool(await asyncio.to_thread(notices, stack, pid))

    await eventually(reminded, "the reminder in the registry", 60, 0.5, stack.tails)
    assert notices(stack, pid) == [("closure_screening", "reminder", None)]

    second_restart = await down_across(stack, signal.SIGKILL, deadline)

    async def escalated() -> bool:
        return len(await asyncio.to_thread(notices, stack, pid)) > 1

    await eventually(escalated, "the escalation in the registry", 60, 0.5, stack.tails)
    assert notices(stack, pid) == [
        ("closure_screening", "reminder", None),
        ("closure_screening", "escalation", "city_epb"),
    ]
    reminder, escalation = await notices_scheduled(stack, pid)
    assert first_restart < reminder < second_restart < escalation, "each sent after a restart"

    async def overdue() -> dict[str, Any] | None:
        seen = await overdue_everywhere(stack, pid)
        return seen if all(seen.values()) else None

    await eventually(overdue, "Overdue in the API, the registry and visibility", 30, 0.5)
    parcel = await read_parcel(stack.http, pid)
    assert parcel["waiting_on"] == ["district_epb"], "an overdue step stays open"

    # The parcel carries on, with a fresh deadline for its next step, no longer overdue.
    screening = Move("closure_screening", "district_epb", {"result": "suspected"})
    outcome = await perform(stack.http, await prepare(stack.http, pid, 0, screening))
    assert (outcome["stage"], outcome["waiting_on"]) == ("investigation", ["reserve_agency"])
    assert datetime.fromisoformat(outcome["deadline"]) > datetime.now(UTC) + timedelta(days=1)
    parcel = await read_parcel(stack.http, pid)
    assert parcel["overdue"] is False
    assert notices(stack, pid)[-1][1] == "escalation", "no notice repeated after the restarts"


async def test_a_worker_started_before_the_server_waits_for_it(stack: Stack):
    """`make run` starts the dev server and the worker together. On a loaded machine the
    worker came up first, could not connect, exited and was restarted by supervisord,
    which `make run` reported as a restart. A worker waits for the engine instead."""
    await stack.stop("worker")
    await stack.stop("temporal")
    await asyncio.to_thread(stack.supervisor.start_program, "worker")
    await asyncio.sleep(2)
    pid = stack.pid("worker")
    assert pid is not None, f"the worker exited without a server:\n{stack.tails()}"
    await asyncio.sleep(4)
    assert stack.pid("worker") == pid, f"the worker did not wait:\n{stack.tails()}"
    await stack.start("temporal")
    await stack.ready("worker")
    assert stack.pid("worker") == pid, "the worker that waited is the one that polls"
