"""Lifecycle throughput: parcels from start to release through the HTTP API, against the
bare workflow of the same shape driven through the Temporal client.

The path is the common one for an industrial parcel with no contamination found:
register, investigation report, filing accepted by the city EPB and by the planning
and land bureau, release (5 HTTP calls, 13 activities). The bare shape is read from a
real parcel history, so both sides run the same activities and updates in the same order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from bench import Row
from bench.bare import WORKFLOW, BareShape
from bench.stack import QUICK, Stack, Timer, stack
from landflow.temporal import workflow_id
from tests.helpers import CLEAN_SAMPLES, REPORT, auth, facts

PARCELS = 20 if QUICK else 200
CONCURRENCY = 10 if QUICK else 20
CHUNKS = 2 if QUICK else 4

# (action, body, role) after registration, in the order the parcel asks for them
ACTIONS: list[tuple[str, dict[str, Any], str]] = [
    (
        "investigation_report",
        {**REPORT, "samples": CLEAN_SAMPLES, "degree": "none"},
        "reserve_agency",
    ),
    ("filing_review", {"decision": "accepted"}, "city_epb"),
    ("filing_review", {"decision": "accepted"}, "planning_land"),
    ("release", {"notes": "清洁，按规划用途放行"}, "planning_land"),
]


def parcel_facts(pid: str) -> dict[str, Any]:
    """An industrial site still operating: investigation needed, nothing found."""
    return facts(pid, enterprise_closed=False, industry="other", polluter=None)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def checked(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text}")
    return response.json()


async def start_parcel(http: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    return checked(await http.post("/parcels", json=body, headers=auth("reserve_agency")), 201)


async def act(
    http: httpx.AsyncClient, pid: str, action: str, body: dict[str, Any], role: str
) -> dict[str, Any]:
    response = await http.post(f"/parcels/{pid}/actions/{action}", json=body, headers=auth(role))
    return checked(response)


async def drive_parcel(http: httpx.AsyncClient, pid: str) -> None:
    await start_parcel(http, parcel_facts(pid))
    for action, body, role in ACTIONS:
        parcel = await act(http, pid, action, body, role)
    if parcel["stage"] != "released":
        raise RuntimeError(f"parcel {pid} ended at {parcel['stage']}")


async def drive_bare(client: Client, queue: str, wid: str, shape: BareShape) -> None:
    handle = await client.start_workflow(WORKFLOW, shape, id=wid, task_queue=queue)
    await handle.execute_update("started")
    for _action, body, _role in ACTIONS:
        await handle.execute_update("act", body)
    await handle.result()


def shape_of(history: WorkflowHistory) -> BareShape:
    """Activities scheduled before the first action update, then between action updates."""
    segments = [0]
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            name = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if name.input.name != "started":
                segments.append(0)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            segments[-1] += 1
    return BareShape(segments=segments)


async def in_parallel(count: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> float:
    """Run `job(i)` for i < count with at most `concurrency` at once; the wall time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await job(index)

    with Timer() as timer:
        await asyncio.gather(*(one(i) for i in range(count)))
    return timer.seconds


async def parcel_job(http: httpx.AsyncClient, ids: list[str], index: int) -> None:
    await drive_parcel(http, ids[index])


async def bare_job(bench: Stack, shape: BareShape, ids: list[str], index: int) -> None:
    await drive_bare(bench.client, bench.bare_queue, f"bare-{ids[index]}", shape)


def api_client(bench: Stack, concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=bench.api_url, limits=limits, timeout=120)


async def reference_shape(bench: Stack, http: httpx.AsyncClient) -> BareShape:
    """Drive one parcel (also warming the worker and API) and read its shape."""
    pid = new_id("W")
    await drive_parcel(http, pid)
    history = await bench.client.get_workflow_handle(workflow_id(pid)).fetch_history()
    return shape_of(history)


async def measure(bench: Stack, parcels: int, concurrency: int) -> tuple[float, float, BareShape]:
    """Parcels per second through the API, and bare workflows per second through the client."""
    async with api_client(bench, concurrency) as http:
        shape = await reference_shape(bench, http)
        await drive_bare(bench.client, bench.bare_queue, new_id("bare-warm-"), shape)
        project = bare = 0.0
        chunk = parcels // CHUNKS
        for _ in range(CHUNKS):  # alternating, so a neighbour's load falls on both
            ids = [new_id("L") for _ in range(chunk)]
            project += await in_parallel(chunk, concurrency, partial(parcel_job, http, ids))
            bare += await in_parallel(chunk, concurrency, partial(bare_job, bench, shape, ids))
    return chunk * CHUNKS / project, chunk * CHUNKS / bare, shape


async def run() -> list[Row]:
    async with stack() as bench:
        bench.start_worker()
        bench.start_bare_worker()
        await bench.start_api()
        project, bare, shape = await measure(bench, PARCELS, CONCURRENCY)
    note = (
        f"{PARCELS} parcels, {CONCURRENCY} concurrent clients; "
        f"{len(shape.segments)} calls, {sum(shape.segments)} activities {shape.segments}"
    )
    return [
        Row("lifecycle throughput", round(project, 2), "parcels/s", round(bare, 2), 0.5, True, note)
    ]
