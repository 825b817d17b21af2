"""What ops see in the Web UI: search attributes, summary, current details, list queries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client

from landflow import visibility
from landflow.temporal import workflow_id
from tests.helpers import DISTRICT, act, facts, start


async def found(client: Client, query: str, seconds: float = 10) -> list[str]:
    """Workflow ids the visibility query finds; visibility lags writes, so poll a little."""
    ids: list[str] = []
    for _ in range(int(seconds * 10)):
        ids = [w.id async for w in client.list_workflows(query)]
        if ids:
            return ids
        await asyncio.sleep(0.1)
    return ids


async def test_search_attributes_summary_and_details_follow_the_parcel(api, temporal, pid):
    client = temporal.client
    await start(api, facts(pid))
    parcel = await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")
    assert (parcel["stage"], parcel["waiting_on"]) == ("investigation", "reserve_agency")
    handle = client.get_workflow_handle(workflow_id(pid))

    desc = await handle.describe()
    attributes = desc.typed_search_attributes
    assert attributes.get(visibility.PARCEL_ID) == pid
    assert attributes.get(visibility.DISTRICT) == DISTRICT
    assert attributes.get(visibility.STAGE) == "investigation"
    assert attributes.get(visibility.WAITING_ON) == "reserve_agency"
    assert attributes.get(visibility.OVERDUE) is False
    assert attributes.get(visibility.LISTED) is False
    deadline = attributes.get(visibility.DEADLINE_AT)
    assert deadline == datetime.fromisoformat(parcel["deadline"])
    assert timedelta(days=179) < deadline - datetime.now(UTC) < timedelta(days=181)
    assert await desc.static_summary() == f"{pid} · 原北京焦化厂 · {DISTRICT} · planned residential"

    # current details: what the UI's "Current details" panel shows (the metadata query)
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    details = metadata.current_details
    assert "**Stage:** investigation" in details
    assert "**Waiting on:** reserve_agency" in details
    assert f"**Deadline:** {deadline.isoformat()}" in details
    assert "**Last decision:** R2 reserve_agency" in details
    assert "started" in {u.name for u in metadata.definition.update_definitions}

    # timers and activities carry summaries in the history the UI draws
    history = await handle.fetch_history()
    summaries = [e.user_metadata.summary for e in history.events if e.HasField("user_metadata")]
    converter = client.data_converter.payload_converter
    texts = {converter.from_payload(s, str) for s in summaries if s.data}
    assert {"rule R3", "load the deadline policy", "remind closure_screening"} <= texts

    # the list queries ops type into the UI
    me = f'ParcelId="{pid}"'
    assert await found(client, me) == [handle.id]
    assert await found(
        client, f'{me} AND Stage="investigation" AND WaitingOn="reserve_agency"'
    ) == [handle.id]
    assert await found(
        client, f'{me} AND District="{DISTRICT}" AND Overdue=false AND Listed=false'
    ) == [handle.id]
    later = (deadline + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await found(client, f'{me} AND DeadlineAt < "{later}"') == [handle.id]
    # the index is current: the old stage no longer matches
    assert [w.id async for w in client.list_workflows(f'{me} AND Stage="closure_screening"')] == []
