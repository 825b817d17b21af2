"""Audit replay: parcel histories per second through the replayer of `landflow audit replay
--all` (landflow.audit.HistoryReplayer), against bare histories of the same length.

Parcel histories come from parcels driven through the API on this run's server; bare
ones from the bare workflow of the same shape, padded with no-op activities until it has
as many events. The CLI itself is also run once over the server (note of the row).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Sequence

from temporalio.client import Client, WorkflowHistory

from bench import Row
from bench.bare import WORKFLOW, BareShape, BareWorkflow
from bench.lifecycle import (
    ACTIONS,
    api_client,
    drive_parcel,
    in_parallel,
    new_id,
    reference_shape,
)
from bench.stack import QUICK, ROOT, Stack, Timer, stack
from landflow.audit import HistoryReplayer, ParcelHistory
from landflow.temporal import workflow_id
from workflows.parcel import ParcelWorkflow

HISTORIES = 10 if QUICK else 50
ROUNDS = 3 if QUICK else 7


async def bare_history(client: Client, queue: str, shape: BareShape) -> WorkflowHistory:
    handle = await client.start_workflow(WORKFLOW, shape, id=new_id("bare-r-"), task_queue=queue)
    await handle.execute_update("started")
    for _action, body, _role in ACTIONS:
        await handle.execute_update("act", body)
    await handle.result()
    return await handle.fetch_history()


def padded(shape: BareShape, extra: int) -> BareShape:
    return BareShape(segments=[*shape.segments[:-1], shape.segments[-1] + extra])


async def bare_shape_of_length(bench: Stack, shape: BareShape, length: int) -> BareShape:
    """The shape padded with no-op activities so that its history has `length` events."""
    base = len((await bare_history(bench.client, bench.bare_queue, shape)).events)
    one = len((await bare_history(bench.client, bench.bare_queue, padded(shape, 1))).events)
    extra = max(0, round((length - base) / (one - base)))
    return padded(shape, extra)


async def replay_rate(
    workflows: Sequence[type], histories: list[WorkflowHistory], seconds: list[float]
) -> None:
    with HistoryReplayer(workflows) as replayer, Timer() as timer:
        for history in histories:
            verdict = await replayer.replay(ParcelHistory(history.events), history.workflow_id)
            if not verdict.deterministic:
                raise RuntimeError(f"{history.workflow_id} does not replay: {verdict.error}")
    seconds.append(timer.seconds)


def cli_replay_all(bench: Stack) -> tuple[int, float]:
    """`landflow audit replay --all` over this server: histories replayed and the wall time."""
    argv = [sys.executable, "-m", "landflow.cli", "audit", "replay", "--all"]
    with Timer() as timer:
        out = subprocess.run(argv, env=bench.env, cwd=ROOT, capture_output=True, text=True)
    found = re.search(r"replayed (\d+), failed (\d+)", out.stdout)
    if out.returncode != 0 or not found or found.group(2) != "0":
        raise RuntimeError(f"landflow audit replay --all failed: {out.stdout}{out.stderr}")
    return int(found.group(1)), timer.seconds


async def run() -> list[Row]:
    async with stack() as bench:
        bench.start_worker()
        bench.start_bare_worker()
        await bench.start_api()
        async with api_client(bench, 10) as http:
            shape = await reference_shape(bench, http)
            pids = [new_id("R") for _ in range(HISTORIES)]
            await in_parallel(HISTORIES, 10, lambda i: drive_parcel(http, pids[i]))
        project = [
            await bench.client.get_workflow_handle(workflow_id(pid)).fetch_history() for pid in pids
        ]
        length = len(project[0].events)
        bare_shape = await bare_shape_of_length(bench, shape, length)
        bare = await asyncio.gather(
            *(bare_history(bench.client, bench.bare_queue, bare_shape) for _ in range(HISTORIES))
        )
        cli_count, cli_seconds = await asyncio.to_thread(cli_replay_all, bench)
    project_s: list[float] = []
    bare_s: list[float] = []
    for _ in range(ROUNDS):  # alternating, so a neighbour's load falls on both
        await replay_rate([ParcelWorkflow], project, project_s)
        await replay_rate([BareWorkflow], bare, bare_s)
    rate = HISTORIES / min(project_s)  # the best round: neither warm-up nor a neighbour's load
    bare_rate = HISTORIES / min(bare_s)
    note = (
        f"{HISTORIES} histories, best of {ROUNDS} rounds; {length} events per parcel history, "
        f"{len(bare[0].events)} per bare one; `landflow audit replay --all` end to end "
        f"(process start and fetching included): {cli_count} in {cli_seconds:.1f} s"
    )
    return [
        Row("audit replay", round(rate, 1), "histories/s", round(bare_rate, 1), 0.7, True, note)
    ]
