"""Audit replay: parcel histories per second through the auditors' replayer
(`audit.replay.HistoryReplayer`), against bare histories of the same length; and an
offline replay of many exported histories in one process (histories/s, peak RSS).

Parcel histories come from parcels driven through the API on this run's server; bare
ones from the bare workflow of the same shape, padded with no-op activities until it has
as many events. The offline corpus is what `landflow audit export` writes (canonical
JSON, one file per parcel), over the scale-out mix of paths; a fresh process
(`python -m bench.replay offline DIR`) loads and replays every file, as an auditor's
machine would, and reports its own peak RSS.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHistory

from audit.replay import HistoryReplayer
from bench import Row
from bench.bare import WORKFLOW, BareShape, BareWorkflow
from bench.drive import INVESTIGATION, MIX, Clerk, api_client, in_parallel, new_id
from bench.lifecycle import reference_shape
from bench.stack import QUICK, ROOT, Layout, Stack, Timer, stack
from landflow.messages import workflow_id
from workflows.history import ParcelHistory, fetch_history
from workflows.parcel import ParcelWorkflow

HISTORIES = 12 if QUICK else 100
ROUNDS = 3 if QUICK else 5
OFFLINE = 24 if QUICK else 1000
TARGET = 0.8


async def bare_history(client: Client, queue: str, shape: BareShape) -> WorkflowHistory:
    handle = await client.start_workflow(WORKFLOW, shape, id=new_id("bare-r-"), task_queue=queue)
    await handle.execute_update("started")
    for _ in shape.segments[1:]:
        await handle.execute_update("act", {"decision": "accepted"})
    await handle.result()
    return await handle.fetch_history()


def padded(shape: BareShape, extra: int) -> BareShape:
    return shape.model_copy(update={"segments": [*shape.segments[:-1], shape.segments[-1] + extra]})


async def bare_shape_of_length(bench: Stack, shape: BareShape, length: int) -> BareShape:
    """The shape padded with no-op activities so that its history has `length` events."""
    base = len((await bare_history(bench.client, bench.bare_queue, shape)).events)
    one = len((await bare_history(bench.client, bench.bare_queue, padded(shape, 1))).events)
    extra = max(0, round((length - base) / max(1, one - base)))
    return padded(shape, extra)


async def replay_seconds(
    workflows: Sequence[type] | None, histories: list[WorkflowHistory]
) -> float:
    """Seconds to replay `histories` (None: the auditors' replayer, both procedures)."""
    replayer = HistoryReplayer() if workflows is None else HistoryReplayer(workflows)
    with replayer, Timer() as timer:
        for history in histories:
            verdict = await replayer.replay(ParcelHistory(history.events), history.workflow_id)
            if not verdict.deterministic:
                raise RuntimeError(f"{history.workflow_id} does not replay: {verdict.error}")
    return timer.seconds


async def export(bench: Stack, pids: list[str], directory: Path) -> int:
    """Write each parcel's history as `landflow audit export` does; total bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    total = 0
    for pid in pids:
        data = (await fetch_history(bench.client, pid)).canonical()
        (directory / f"{pid}.json").write_bytes(data)
        total += len(data)
    return total


def offline(directory: Path) -> dict[str, Any]:
    """Replay every exported history in `directory` in this process (a fresh one), as
    `landflow audit replay --file` does each: load the canonical JSON, replay against both
    procedures. Reading (JSON to protobuf events) and replaying are timed apart."""
    files = sorted(directory.glob("*.json"))

    async def replay_all() -> tuple[int, float, float]:
        failed, reading, replaying = 0, 0.0, 0.0
        with HistoryReplayer() as replayer:
            for path in files:
                began = time.perf_counter()
                history = ParcelHistory.from_json(path.read_bytes())
                read = time.perf_counter()
                failed += not (await replayer.replay(history)).deterministic
                reading += read - began
                replaying += time.perf_counter() - read
        return failed, reading, replaying

    failed, reading, replaying = asyncio.run(replay_all())
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {
        "histories": len(files),
        "failed": failed,
        "seconds": reading + replaying,
        "reading_s": reading,
        "peak_rss_mib": peak,
    }


def offline_in_subprocess(directory: Path) -> dict[str, Any]:
    argv = [sys.executable, "-m", "bench.replay", "offline", str(directory)]
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"offline replay failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


async def run() -> list[Row]:
    async with stack(Layout(bare=True)) as bench, api_client(bench.url(), 20) as http:
        clerk = Clerk(http)
        shape = await reference_shape(bench, clerk)
        pids = [new_id("R") for _ in range(HISTORIES)]
        await in_parallel(HISTORIES, 20, lambda i: clerk.drive(pids[i], INVESTIGATION))
        mixed = [new_id("M") for _ in range(OFFLINE - HISTORIES)]
        await in_parallel(len(mixed), 20, lambda i: clerk.drive(mixed[i], MIX[i % len(MIX)]))
        project = [
            await bench.client.get_workflow_handle(workflow_id(pid)).fetch_history() for pid in pids
        ]
        length = len(project[0].events)
        bare_shape = await bare_shape_of_length(bench, shape, length)
        bare = list(
            await asyncio.gather(
                *(bare_history(bench.client, bench.bare_queue, bare_shape) for _ in pids)
            )
        )
        exported = await export(bench, pids + mixed, bench.tmp / "exported")
        project_s, bare_s, v2_s = [], [], []
        for _ in range(ROUNDS):  # alternating, so a neighbour's load falls on both
            project_s.append(await replay_seconds(None, project))
            bare_s.append(await replay_seconds([BareWorkflow], bare))
            v2_s.append(await replay_seconds([ParcelWorkflow], project))
        corpus = await asyncio.to_thread(offline_in_subprocess, bench.tmp / "exported")
    rate = HISTORIES / min(project_s)  # the best round: neither warm-up nor a neighbour's load
    bare_rate = HISTORIES / min(bare_s)
    if corpus["failed"]:
        raise RuntimeError(f"offline replay: {corpus['failed']} histories did not replay")
    note = (
        f"{HISTORIES} histories, best of {ROUNDS} rounds; {length} events per parcel history, "
        f"{len(bare[0].events)} per bare one; the auditors' replayer (both procedures "
        f"registered) against one of the bare workflow; with only ParcelWorkflowV2 "
        f"registered {HISTORIES / min(v2_s):.1f}/s (ratio {min(bare_s) / min(v2_s):.2f})"
    )
    offline_note = (
        f"{corpus['histories']} exported histories ({exported / 2**20:.1f} MiB of canonical "
        f"JSON, paths {'/'.join(sorted({p.name for p in MIX}))}) loaded and replayed in one "
        f"fresh process in {corpus['seconds']:.1f} s, of which {corpus['reading_s']:.1f} s "
        f"reading the JSON into events"
    )
    return [
        Row("audit replay", round(rate, 1), "histories/s", round(bare_rate, 1), TARGET, True, note),
        Row(
            "offline replay",
            round(corpus["histories"] / corpus["seconds"], 1),
            "histories/s",
            None,
            None,
            True,
            offline_note,
        ),
        Row(
            "offline replay peak RSS",
            round(corpus["peak_rss_mib"], 1),
            "MiB",
            None,
            None,
            False,
            offline_note,
        ),
    ]


if __name__ == "__main__":
    if sys.argv[1:2] == ["offline"]:
        print(json.dumps(offline(Path(sys.argv[2]))), flush=True)
    else:
        print(asyncio.run(run()), flush=True)
    os._exit(0)  # the Temporal core bridge can crash at interpreter exit (sdk-python#300)
