"""Approval latency: one action through the HTTP API under 20 concurrent clients, against
one bare update through the Temporal client.

Each client takes fresh parcels through the lifecycle benchmark's path and times every
action (investigation report, two filing reviews, release); registering the parcel is
not timed. The bare side times the `act` updates of the bare workflow of the same shape
(same activities per update). Fresh parcels keep the state each action returns at its
real size: a parcel that had taken fifty actions would return fifty action records.
Project and bare alternate in blocks, so a neighbour's load on the machine falls on both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

import httpx

from bench import Row
from bench.bare import WORKFLOW, BareShape
from bench.lifecycle import (
    ACTIONS,
    act,
    api_client,
    new_id,
    parcel_facts,
    reference_shape,
    start_parcel,
)
from bench.stack import QUICK, Stack, percentile, stack

CLIENTS = 20
BLOCKS = 4 if QUICK else 12  # each client takes one parcel per block


async def timed(samples: list[float], call: Awaitable[object]) -> None:
    start = time.perf_counter()
    await call
    samples.append(time.perf_counter() - start)


async def project_parcel(http: httpx.AsyncClient, samples: list[float]) -> None:
    pid = new_id("A")
    await start_parcel(http, parcel_facts(pid))
    for action, body, role in ACTIONS:
        await timed(samples, act(http, pid, action, body, role))


async def bare_parcel(bench: Stack, shape: BareShape, samples: list[float]) -> None:
    handle = await bench.client.start_workflow(
        WORKFLOW, shape, id=new_id("bare-a-"), task_queue=bench.bare_queue
    )
    await handle.execute_update("started")
    for _action, body, _role in ACTIONS:
        await timed(samples, handle.execute_update("act", body))
    await handle.result()


async def measure(bench: Stack) -> tuple[list[float], list[float], BareShape]:
    project: list[float] = []
    bare: list[float] = []
    async with api_client(bench, CLIENTS) as http:
        shape = await reference_shape(bench, http)
        await bare_parcel(bench, shape, [])  # warm-up
        for _ in range(BLOCKS):
            await asyncio.gather(*(project_parcel(http, project) for _ in range(CLIENTS)))
            await asyncio.gather(*(bare_parcel(bench, shape, bare) for _ in range(CLIENTS)))
    return project, bare, shape


async def run() -> list[Row]:
    async with stack() as bench:
        bench.start_worker()
        bench.start_bare_worker()
        await bench.start_api()
        project, bare, shape = await measure(bench)
    note = (
        f"{CLIENTS} concurrent clients, {len(project)} actions each side; "
        f"activities per action {shape.segments[1:]}"
    )

    def ms(samples: list[float], q: int) -> float:
        return round(percentile(samples, q) * 1000, 1)

    return [
        Row("approval latency p50", ms(project, 50), "ms", ms(bare, 50), None, False, note),
        Row("approval latency p99", ms(project, 99), "ms", ms(bare, 99), 2.0, False, note),
    ]
