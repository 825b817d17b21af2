"""What ops see in the Temporal Web UI: search attributes, static summary, current details,
and the list queries they type, following one parcel through three steps.

Visibility is eventually consistent (the index lags the history), so list queries are
polled until they answer as expected or a deadline passes; `describe` reads the
execution itself and is exact at once.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle

from landflow.messages import workflow_id
from tests.helpers import ACCEPTED, DIRTY_SAMPLES, DISTRICT, act, cite, facts, start
from workflows import visibility

VISIBILITY_LAG_S = 15.0


async def until_found(client: Client, query: str, expected: list[str]) -> None:
    """Poll the visibility query until it finds exactly `expected`."""
    deadline = time.monotonic() + VISIBILITY_LAG_S
    while True:
        ids = [w.id async for w in client.list_workflows(query)]
        if ids == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{query!r} found {ids}, not {expected}, for {VISIBILITY_LAG_S}s")
        await asyncio.sleep(0.1)


async def attributes(handle: WorkflowHandle[Any, Any]) -> dict[str, object]:
    found = (await handle.describe()).typed_search_attributes
    return {key.name: found.get(key) for key in visibility.ALL_KEYS}


async def details(handle: WorkflowHandle[Any, Any]) -> str:
    """The UI's "Current details" panel (the metadata query)."""
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


async def test_search_attributes_summary_and_details_follow_the_parcel(api, temporal, pid):
    client: Client = temporal.client
    handle = client.get_workflow_handle(workflow_id(pid))
    me = f'ParcelId="{pid}"'
    started = await start(api, facts(pid))
    assert started["stage"] == "closure_screening"
    screening_deadline = datetime.fromisoformat(started["deadline"])
    assert await attributes(handle) == {
        "ParcelId": pid,
        "District": DISTRICT,
        "Stage": "closure_screening",
        "WaitingOn": "district_epb",
        "Assignees": ["district_epb"],
        "Overdue": False,
        "Listed": False,
        "DeadlineAt": screening_deadline,
    }
    description = await handle.describe()
    assert await description.static_summary() == (
        f"{pid} · 原北京焦化厂 · {DISTRICT} · planned residential"
    )
    await until_found(client, f'{me} AND Stage="closure_screening"', [handle.id])

    # step 2: the reserve agency investigates (R2), the suspected list is entered
    await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")
    now = await attributes(handle)
    assert (now["Stage"], now["WaitingOn"], now["Assignees"]) == (
        "investigation",
        "reserve_agency",
        ["reserve_agency"],
    )
    deadline = now["DeadlineAt"]
    assert isinstance(deadline, datetime)
    assert timedelta(days=1) < deadline - datetime.now(UTC) < timedelta(days=400)
    shown = await details(handle)
    assert "**Stage:** investigation (running)" in shown
    assert "**Step:** investigation · **waiting on:** reserve_agency" in shown
    assert f"**Deadline:** {deadline.isoformat()}" in shown
    assert "**Last decision:** R2 reserve_agency" in shown
    await until_found(client, f'{me} AND Stage="closure_screening"', [])  # the index moved on
    await until_found(
        client, f'{me} AND Stage="investigation" AND WaitingOn="reserve_agency"', [handle.id]
    )

    # step 3: the report goes to the joint review; one bureau answers
    body = {
        "samples": DIRTY_SAMPLES,
        "extent_m2": 50_000,
        "degree": "heavy",
        "documents": await cite(api, pid, "investigation_report", "reserve_agency"),
    }
    await act(api, pid, "investigation_report", body, "reserve_agency")
    now = await attributes(handle)
    assert (now["Stage"], sorted(now["Assignees"] or [])) == (  # type: ignore[arg-type]
        "filing",
        ["city_epb", "planning_land"],
    )
    await until_found(client, f'{me} AND Assignees="planning_land"', [handle.id])
    await act(api, pid, "filing_review", ACCEPTED, "city_epb")
    now = await attributes(handle)
    assert (now["Stage"], now["WaitingOn"], now["Assignees"]) == (
        "filing",
        "planning_land",
        ["planning_land"],
    )
    await until_found(client, f'{me} AND Assignees="city_epb"', [])
    query = (
        f'{me} AND District="{DISTRICT}" AND Stage="filing" AND WaitingOn="planning_land" '
        "AND Overdue=false AND Listed=false"
    )
    await until_found(client, query, [handle.id])
    later = (now["DeadlineAt"] + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[operator]
    await until_found(client, f'{me} AND DeadlineAt < "{later}"', [handle.id])
    assert (await client.count_workflows(f'{me} AND Stage="filing"')).count == 1

    # activities and timers carry the summaries the UI draws in the history
    history = await handle.fetch_history()
    converter = client.data_converter.payload_converter
    summaries = {
        converter.from_payload(e.user_metadata.summary, str)
        for e in history.events
        if e.HasField("user_metadata") and e.user_metadata.summary.data
    }
    assert {
        "registry: investigation",
        "lists: enter suspected",
        "remind closure_screening",
    } <= summaries, sorted(summaries)
