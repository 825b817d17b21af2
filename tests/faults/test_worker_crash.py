"""SIGKILL the worker in the middle of activities and while actions are in flight, at
several points of the lifecycle: after a restart every parcel ends exactly as an
undisturbed one, and the registry holds one row per fact.

The worker under fire runs with LANDFLOW_TEST_ACTIVITY_DELAY_S: each activity does its
work (registry rows written) and then sleeps before reporting back, so the kill lands
after the side effect and before Temporal records the result: the retried activity
repeats the write. The retry starts when the attempt's start-to-close timeout (30 s)
runs out, which is most of this test's time; all crash points share that wait.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import httpx
import pytest
from sqlmodel import Session, select
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client

from landflow import registry
from landflow.registry import DecisionRow, ListEntryRow, NoticeRow, ParcelRow
from landflow.worker import TEST_ACTIVITY_DELAY_ENV
from tests.faults.conftest import MakeStack, Stack
from tests.faults.procs import eventually
from tests.helpers import REPORT, TRANSPORT, act, auth, facts, get, start

pytestmark = pytest.mark.faults

Step = tuple[str, dict[str, Any], str]  # action, body, role
PLAN = {"plan": "热脱附", "contractor": "北京建工环境修复"}
# Closed coking plant: screening, investigation, filing, listing, remediation, release.
SCRIPT: list[Step] = [
    ("closure_screening", {"result": "suspected", "notes": "焦油残留"}, "district_epb"),
    ("investigation_report", REPORT, "reserve_agency"),
    ("filing_review", {"decision": "accepted"}, "city_epb"),
    ("filing_review", {"decision": "accepted"}, "planning_land"),
    ("choose_path", {"path": "remediation"}, "district_government"),
    ("remediation_plan", PLAN, "district_government"),
    ("soil_transport", TRANSPORT, "district_government"),
    ("works_completed", {"summary": "完工"}, "district_government"),
    ("evaluation", {"met": True, "evaluator": "某评估公司"}, "third_party_evaluator"),
    ("release", {}, "planning_land"),
]
# The action in flight when the worker dies, and the activity it is in the middle of:
# R1/R2 decisions, R5/R9 decisions, entering the lists, R7, leaving the lists.
CRASH_AT = (0, 1, 3, 6, 9)
SLOW_S = "120"  # longer than the attempt timeout: the slowed worker never reports back


def key(pid: str, index: int) -> dict[str, str]:
    return {"Idempotency-Key": f"{pid}-{index}"}


async def drive(api: httpx.AsyncClient, pid: str, steps: range) -> dict[str, Any]:
    parcel: dict[str, Any] = {}
    for i in steps:
        action, body, role = SCRIPT[i]
        parcel = await act(api, pid, action, body, role, **key(pid, i))
    return parcel


async def retry_until_applied(api: httpx.AsyncClient, pid: str, index: int) -> dict[str, Any]:
    """What a client does after a 503: the same request, the same Idempotency-Key."""
    action, body, role = SCRIPT[index]

    async def attempt() -> dict[str, Any] | None:
        response = await api.post(
            f"/parcels/{pid}/actions/{action}",
            json=body,
            headers={**auth(role), **key(pid, index)},
        )
        if response.status_code == 503:
            return None
        assert response.status_code == 200, response.text
        return response.json()

    return await eventually(attempt, f"{pid}: {action} applied after the restart", 90, 1)


async def in_mid_activity(client: Client, pid: str) -> bool:
    description = await client.get_workflow_handle(f"parcel-{pid}").describe()
    return any(
        a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        for a in description.raw_description.pending_activities
    )


async def retried_attempts(client: Client, pid: str) -> int:
    """Activity attempts after the first: proof the kill hit a running activity."""
    history = await client.get_workflow_handle(f"parcel-{pid}").fetch_history()
    return sum(
        1
        for e in history.events
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.attempt > 1
    )


def list_entries(stack: Stack, pid: str) -> list[ListEntryRow]:
    with Session(registry.make_engine(stack.settings.database_url)) as session:
        return list(session.exec(select(ListEntryRow).where(ListEntryRow.parcel_id == pid)))


def outcome(parcel: dict[str, Any]) -> dict[str, Any]:
    """Everything about the end state that must not depend on a crash."""
    return {
        "stage": parcel["stage"],
        "listed": parcel["listed"],
        "stages": [v["stage"] for v in parcel["history"]],
        "actions": [(a["action"], a["role"], a["payload"]) for a in parcel["actions"]],
        "decisions": [
            (d["id"].split("/", 1)[1], d["rule"], d["row"], d["outcome"])
            for d in parcel["decisions"]
        ],
    }


def registry_rows(stack: Stack, parcel: dict[str, Any]) -> dict[str, Any]:
    pid = parcel["parcel_id"]
    with Session(registry.make_engine(stack.settings.database_url)) as session:
        decisions = session.exec(select(DecisionRow).where(DecisionRow.parcel_id == pid)).all()
        notices = session.exec(select(NoticeRow).where(NoticeRow.parcel_id == pid)).all()
        row = session.get(ParcelRow, pid)
    assert sorted(d.decision_id for d in decisions) == sorted(
        d["id"] for d in parcel["decisions"]
    ), f"{pid}: registry decisions differ from the workflow's"
    return {
        "decisions": sorted((d.decision_id.split("/", 1)[1], d.outcome) for d in decisions),
        "lists": sorted((e.list_name, e.left_at is not None) for e in list_entries(stack, pid)),
        "notices": len(notices),
        "parcel": (row.stage, row.waiting_on, row.listed) if row else None,
    }


async def crash_course(api: httpx.AsyncClient, pid: str, k: int) -> None:
    """Start a parcel and drive it, undisturbed, up to the action that will be in flight."""
    await start(api, facts(pid))
    await drive(api, pid, range(k))


async def recover(api: httpx.AsyncClient, pid: str, k: int) -> dict[str, Any]:
    """After the restart: the action in flight again (same key), then the rest."""
    first = await retry_until_applied(api, pid, k)
    assert await retry_until_applied(api, pid, k) == first  # applied once, same answer
    await drive(api, pid, range(k + 1, len(SCRIPT)))
    return await get(api, pid)


async def born_and_finished(api: httpx.AsyncClient, pid: str) -> dict[str, Any]:
    """The parcel whose start was in flight: it runs once, then goes the whole way."""
    again = await api.post("/parcels", json=facts(pid), headers=auth("reserve_agency"))
    assert again.status_code == 409, again.text

    async def waiting() -> bool:
        response = await api.get(f"/parcels/{pid}", headers=auth("auditor"))
        return response.status_code == 200 and response.json()["stage"] == "closure_screening"

    await eventually(waiting, f"{pid} waits on its first step after the restart", 90, 1)
    await drive(api, pid, range(len(SCRIPT)))
    return await get(api, pid)


async def undisturbed(api: httpx.AsyncClient, pid: str) -> dict[str, Any]:
    await start(api, facts(pid))
    await drive(api, pid, range(len(SCRIPT)))
    return await get(api, pid)


async def test_worker_killed_mid_activity_and_mid_action(make_stack: MakeStack, pid: str):
    stack = await make_stack(action_timeout_s=3)
    api, crashed = stack.api, [f"{pid}-{k}" for k in CRASH_AT]
    await asyncio.gather(*(crash_course(api, p, k) for p, k in zip(crashed, CRASH_AT, strict=True)))

    # A worker that does each activity's work but never reports back, until SIGKILL.
    stack.worker.stop(signal.SIGTERM)  # graceful: the next tasks go to the new worker at once
    stack.worker.start(**{TEST_ACTIVITY_DELAY_ENV: SLOW_S})
    await stack.worker.polling()
    in_flight = [
        asyncio.create_task(
            api.post(
                f"/parcels/{p}/actions/{SCRIPT[k][0]}",
                json=SCRIPT[k][1],
                headers={**auth(SCRIPT[k][2]), **key(p, k)},
            )
        )
        for p, k in zip(crashed, CRASH_AT, strict=True)
    ]
    born = f"{pid}-new"  # a parcel whose start is in flight
    in_flight.append(
        asyncio.create_task(api.post("/parcels", json=facts(born), headers=auth("reserve_agency")))
    )
    for p in [*crashed, born]:
        await eventually(lambda p=p: in_mid_activity(stack.client, p), f"{p} mid-activity", 30)
    stack.worker.stop(signal.SIGKILL)
    # the killed activity had done its work: listing wrote both list entries already
    assert len(list_entries(stack, crashed[CRASH_AT.index(3)])) == 2
    stack.worker.start()
    await stack.worker.polling()

    answers = await asyncio.gather(*in_flight)
    for answer in answers[:-1]:
        assert answer.status_code == 503, answer.text  # it could not finish before the kill
        assert answer.json()["error"] == "Unavailable"
    assert answers[-1].status_code == 201, answers[-1].text  # started and durable

    # Recovery waits out the killed attempts' timeout; a parcel that never saw a crash
    # is driven meanwhile as the yardstick.
    reference = f"{pid}-ref"
    *ends, expected = await asyncio.gather(
        *(recover(api, p, k) for p, k in zip(crashed, CRASH_AT, strict=True)),
        born_and_finished(api, born),
        undisturbed(api, reference),
    )
    assert expected["stage"] == "released" and len(expected["actions"]) == len(SCRIPT)
    assert registry_rows(stack, expected)["lists"] == [("contaminated", True), ("negative", True)]
    for parcel in ends:
        assert await retried_attempts(stack.client, parcel["parcel_id"]) >= 1
        assert outcome(parcel) == outcome(expected), parcel["parcel_id"]
        assert registry_rows(stack, parcel) == registry_rows(stack, expected), parcel["parcel_id"]
