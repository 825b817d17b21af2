"""Approval latency: one action through the HTTP API under 20 concurrent clients, against
one bare update through the Temporal client; and a single uncontended action (a clerk's
click, nobody else busy) against a single uncontended bare update that does what the
parcel's engine does for it (one upsert, one activity).

Each client takes fresh parcels down the lifecycle benchmark's path and times every
action (investigation report, the two filing reviews, release); the registration and
the upload are not timed. The bare side times the `act` updates of the bare workflow of
the same shape (the same activities and search-attribute upserts after each update).
Project and bare alternate in blocks, so a neighbour's load on the machine falls on both.
The clerk's click is the first filing review of a parcel (no samples, no document: the
common click), timed one at a time.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable

from bench import Row
from bench.bare import WORKFLOW, BareShape
from bench.drive import INVESTIGATION, Clerk, Drive, api_client, new_id
from bench.lifecycle import reference_shape
from bench.stack import QUICK, Layout, Stack, percentile, stack

CLIENTS = int(os.environ.get("BENCH_CONCURRENCY", "20"))
BLOCKS = 2 if QUICK else 10  # each client takes one parcel per block
CLICKS = 6 if QUICK else 40
ACTIONS = [s.action for s in INVESTIGATION.steps]
P50_TARGET, P99_TARGET = 1.3, 1.5
# A first filing opinion: the parcel upserts who still owes the review, then projects
CLICK_SHAPE = BareShape(segments=[1, 1], upserts=[0, 1])


async def timed(samples: list[float], call: Awaitable[object]) -> None:
    start = time.perf_counter()
    await call
    samples.append(time.perf_counter() - start)


def action_seconds(drive: Drive) -> list[float]:
    return [s for name, s in drive.calls if name in ACTIONS]


async def bare_parcel(bench: Stack, shape: BareShape, samples: list[float]) -> None:
    handle = await bench.client.start_workflow(
        WORKFLOW, shape, id=new_id("bare-a-"), task_queue=bench.bare_queue
    )
    await handle.execute_update("started")
    for _ in shape.segments[1:]:
        await timed(samples, handle.execute_update("act", {"decision": "accepted"}))
    await handle.result()


async def clicks(bench: Stack, clerk: Clerk, shape: BareShape) -> tuple[list[float], list[float]]:
    """One action at a time: the first filing review of a parcel, and a bare update after
    one activity, alternating."""
    project: list[float] = []
    bare: list[float] = []
    report, review = INVESTIGATION.steps[0], INVESTIGATION.steps[1]
    for _ in range(CLICKS):
        drive = Drive(new_id("C"), INVESTIGATION)
        await clerk.register(drive, INVESTIGATION.facts(drive.pid))
        await clerk.act(drive, report, f"{drive.pid}-0")
        await asyncio.sleep(0.2)  # let the worker and server settle: nobody else is busy
        await timed(project, clerk.act(drive, review, f"{drive.pid}-1"))
        handle = await bench.client.start_workflow(
            WORKFLOW, CLICK_SHAPE, id=new_id("bare-c-"), task_queue=bench.bare_queue
        )
        await handle.execute_update("started")
        await asyncio.sleep(0.2)
        await timed(bare, handle.execute_update("act", {"decision": "accepted"}))
        await handle.result()
    return project, bare


async def measure(bench: Stack) -> dict[str, list[float]]:
    project: list[float] = []
    bare: list[float] = []
    by_action: dict[str, list[float]] = {name: [] for name in ACTIONS}
    async with api_client(bench.url(), CLIENTS) as http:
        clerk = Clerk(http)
        shape = await reference_shape(bench, clerk)
        await bare_parcel(bench, shape, [])  # warm-up
        for _ in range(BLOCKS):
            drives = await asyncio.gather(
                *(clerk.drive(new_id("A"), INVESTIGATION) for _ in range(CLIENTS))
            )
            project += [s for d in drives for s in action_seconds(d)]
            for d in drives:
                for name, seconds in d.calls:
                    if name in by_action:
                        by_action[name].append(seconds)
            await asyncio.gather(*(bare_parcel(bench, shape, bare) for _ in range(CLIENTS)))
        click, bare_click = await clicks(bench, clerk, shape)
    return {
        "project": project,
        "bare": bare,
        "click": click,
        "bare_click": bare_click,
        **{f"action:{name}": values for name, values in by_action.items()},
    }


def ms(samples: list[float], q: float) -> float:
    return round(percentile(samples, q) * 1000, 1)


async def run() -> list[Row]:
    async with stack(Layout(bare=True)) as bench:
        got = await measure(bench)
    project, bare = got["project"], got["bare"]
    split = "; ".join(
        f"{key.removeprefix('action:')} p50 {ms(values, 50)} / p99 {ms(values, 99)} ms"
        for key, values in got.items()
        if key.startswith("action:")
    )
    note = (
        f"{CLIENTS} concurrent clients, {len(project)} actions each side "
        f"({', '.join(ACTIONS)}); bare: the same activities and search-attribute upserts "
        f"after each update; by action: "
        f"{split}"
    )
    click_note = (
        f"{CLICKS} single filing reviews, one at a time, against single bare updates that "
        f"upsert once and run one activity; p90 {ms(got['click'], 90)} ms vs "
        f"{ms(got['bare_click'], 90)} ms"
    )
    return [
        Row("approval latency p50", ms(project, 50), "ms", ms(bare, 50), P50_TARGET, False, note),
        Row("approval latency p99", ms(project, 99), "ms", ms(bare, 99), P99_TARGET, False, note),
        Row(
            "clerk's click (uncontended) p50",
            ms(got["click"], 50),
            "ms",
            ms(got["bare_click"], 50),
            None,
            False,
            click_note,
        ),
    ]
