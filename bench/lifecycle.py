"""Lifecycle throughput: parcels from registration to release through the HTTP API,
against the bare workflow of the same shape driven through the Temporal client.

The path (bench.drive.INVESTIGATION) is the common one for an operating industrial site
with nothing found: register, upload the investigation report, report, the joint filing
review by the city EPB and the planning bureau, release. The bare shape is read from a
real parcel history of this run, so both sides take the same updates, run the same
number of activities and upsert search attributes as often between them, and hold the
same deadline timers while they wait; the bare side has no logic, no registry, no
documents and no HTTP.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from temporalio.client import Client

from bench import Row
from bench.bare import WORKFLOW, BareShape
from bench.drive import INVESTIGATION, Clerk, api_client, in_parallel, new_id, shape_of
from bench.stack import QUICK, CpuMeter, Layout, Stack, stack
from landflow.messages import workflow_id

PARCELS = 30 if QUICK else 240
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "20"))
CHUNKS = 2 if QUICK else 4
TARGET = 0.8


async def drive_bare(client: Client, queue: str, wid: str, shape: BareShape) -> None:
    handle = await client.start_workflow(WORKFLOW, shape, id=wid, task_queue=queue)
    await handle.execute_update("started")
    for _ in shape.segments[1:]:
        await handle.execute_update("act", {"decision": "accepted"})
    await handle.result()


async def reference_shape(bench: Stack, clerk: Clerk) -> BareShape:
    """Drive one parcel (warming the worker and the API) and read its shape."""
    pid = new_id("W")
    await clerk.drive(pid, INVESTIGATION)
    history = await bench.client.get_workflow_handle(workflow_id(pid)).fetch_history()
    return shape_of(history)


@dataclass
class Measured:
    project: float  # parcels/s
    bare: float  # bare workflows/s
    shape: BareShape
    cpu: dict[str, float]  # CPU ms per parcel, by process
    bare_cpu: dict[str, float]


async def measure(bench: Stack, parcels: int, concurrency: int) -> Measured:
    """Parcels per second through the API, bare workflows per second through the client;
    in alternating chunks, so a neighbour's load on the machine falls on both. CPU per
    parcel of each process is measured alongside (less sensitive to that load)."""
    project_cpu = CpuMeter(bench, ["worker-1", "temporal", "api-1"])
    bare_cpu = CpuMeter(bench, ["bare", "temporal"])
    async with api_client(bench.url(), concurrency) as http:
        clerk = Clerk(http)
        shape = await reference_shape(bench, clerk)
        await drive_bare(bench.client, bench.bare_queue, new_id("bare-warm-"), shape)
        project = bare = 0.0
        chunk = parcels // CHUNKS
        for _ in range(CHUNKS):
            ids = [new_id("L") for _ in range(chunk)]

            async def parcel(i: int, ids: list[str] = ids) -> None:
                await clerk.drive(ids[i], INVESTIGATION)

            async def bare_one(i: int, ids: list[str] = ids) -> None:
                await drive_bare(bench.client, bench.bare_queue, f"bare-{ids[i]}", shape)

            project_cpu.start()
            project += await in_parallel(chunk, concurrency, parcel)
            project_cpu.stop()
            bare_cpu.start()
            bare += await in_parallel(chunk, concurrency, bare_one)
            bare_cpu.stop()
    done = chunk * CHUNKS

    def per_parcel(meter: CpuMeter) -> dict[str, float]:
        return {name: round(s * 1000 / done, 1) for name, s in meter.used.items()}

    return Measured(
        done / project, done / bare, shape, per_parcel(project_cpu), per_parcel(bare_cpu)
    )


def cpu_note(cpu: dict[str, float]) -> str:
    return f"{sum(cpu.values()):.0f} ms (" + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()) + ")"


async def run() -> list[Row]:
    async with stack(Layout(bare=True)) as bench:
        got = await measure(bench, PARCELS, CONCURRENCY)
    shape = got.shape
    note = (
        f"{PARCELS} parcels, {CONCURRENCY} concurrent clients, {INVESTIGATION.calls} HTTP "
        f"calls each; {len(shape.segments) - 1} actions, {sum(shape.segments)} activities "
        f"{shape.segments}{f' + local {shape.local}' if shape.local else ''}, timers "
        f"{shape.timers}, search-attribute upserts {shape.upserts or 'none'} (the bare "
        "workflow: the same updates, activities, timers and upserts); "
        f"CPU per parcel: landflow "
        f"{cpu_note(got.cpu)}, bare {cpu_note(got.bare_cpu)}"
    )
    return [
        Row(
            "lifecycle throughput",
            round(got.project, 2),
            "parcels/s",
            round(got.bare, 2),
            TARGET,
            True,
            note,
        )
    ]
