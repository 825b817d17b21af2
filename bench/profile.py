"""`python -m bench.profile`: where an action's time goes, per process.

Drives parcels down the lifecycle path (bench.drive.INVESTIGATION) through the API, 20 at
once, and the bare workflow of the same shape through the client, while py-spy samples
the worker and the API (100 Hz, only the thread holding the GIL: Python's own CPU).
Prints CPU milliseconds per action of each process (worker, dev server, API, this load
generator) on both sides, and the share of the worker's and the API's samples by group
of frames (landflow, the SDK, the libraries) and by function of this repo. The collapsed
stacks land in bench/profile/{worker,api}.txt (speedscope or flamegraph.pl read them).
bench/PROFILE.md says what they showed.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
import time
from pathlib import Path

from bench.bare import WORKFLOW
from bench.drive import INVESTIGATION, Clerk, api_client, in_parallel, new_id
from bench.lifecycle import drive_bare, reference_shape
from bench.stack import BIN, CpuMeter, Layout, Stack, stack

OUT = Path(__file__).resolve().parent / "profile"
PARCELS = int(__import__("os").environ.get("BENCH_PROFILE_PARCELS", "60"))
# the project's own packages, as py-spy names their frames: "(workflows/parcel.py:12)"
PACKAGES = "workflows activities rules landflow api registry documents service audit"
REPO = tuple(f"({package}/" for package in PACKAGES.split())
GROUPS = {
    "landflow: workflow code (workflows/, landflow/)": ("(workflows/", "(landflow/"),
    "landflow: activities (activities/, rules/)": ("(activities/", "(rules/"),
    "landflow: API code (api/)": ("(api/",),
    "registry writes and reads (registry/, SQLAlchemy, drivers)": (
        "(registry/",
        "(sqlalchemy/",
        "(sqlmodel/",
        "(psycopg",
        "(sqlite3/",
    ),
    "temporal SDK: workflow activations": ("(temporalio/worker/_workflow",),
    "temporal SDK: sandbox": ("workflow_sandbox",),
    "temporal SDK: payload conversion": ("(temporalio/converter", "(temporalio/contrib/pydantic"),
    "temporal SDK: client, bridge": (
        "(temporalio/client",
        "(temporalio/bridge",
        "(temporalio/service",
    ),
    "pydantic": ("(pydantic",),
    "logging (JSON lines)": ("(logging/", "(pythonjsonlogger"),
    "FastAPI, Starlette, uvicorn": ("(fastapi/", "(starlette/", "(uvicorn/", "(h11/", "(anyio/"),
    "durable-rules": ("(durable/",),
    "policy YAML parsing": ("(yaml/",),
}


# Innermost-frame attribution: libraries first, so a landflow function's own share is
# what runs in it, not in what it calls.
LEAF_GROUPS = {
    "SQLAlchemy, drivers": ("(sqlalchemy/", "(sqlmodel/", "(psycopg", "(sqlite3/"),
    "pydantic": ("(pydantic",),
    "temporal SDK: sandbox": ("workflow_sandbox",),
    "temporal SDK: workflow activations": ("(temporalio/worker/_workflow",),
    "temporal SDK: payload conversion": ("(temporalio/converter", "(temporalio/contrib/pydantic"),
    "temporal SDK: activities, client, bridge": ("(temporalio/",),
    "FastAPI, Starlette, uvicorn, h11": (
        "(fastapi/",
        "(starlette/",
        "(uvicorn/",
        "(h11/",
        "(anyio/",
    ),
    "httpx (API client side)": ("(httpx/", "(httpcore/"),
    "logging (JSON lines)": ("(logging/", "(pythonjsonlogger"),
    "durable-rules": ("(durable/",),
    "policy YAML parsing": ("(yaml/",),
    "protobuf": ("(google/protobuf",),
    "landflow code itself": REPO,
}


def spy(bench: Stack, name: str) -> subprocess.Popen[bytes]:
    argv = [str(BIN / "py-spy"), "record", "-p", str(bench.pid(name)), "-r", "100", "--gil"]
    argv += ["--nonblocking", "--format", "raw", "-o", str(OUT / f"{name.split('-')[0]}.txt")]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def samples_of(path: Path) -> list[tuple[list[str], int]]:
    found = []
    for line in path.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        if stack_text:
            found.append((stack_text.split(";"), int(count)))
    return found


def shares(path: Path) -> tuple[int, dict[str, float]]:
    """Samples holding the GIL (Python CPU), and the inclusive share of each group."""
    found: collections.Counter[str] = collections.Counter()
    busy = 0
    for frames, count in samples_of(path):
        busy += count
        for group, marks in GROUPS.items():
            if any(mark in frame for frame in frames for mark in marks):
                found[group] += count
    return busy, {g: 100 * n / max(busy, 1) for g, n in found.most_common()}


def leaf_shares(path: Path) -> dict[str, float]:
    """Each sample counted once, for the group of its innermost frame that has one (what
    that code costs itself, not what it calls); the rest is "other"."""
    found: collections.Counter[str] = collections.Counter()
    busy = 0
    for frames, count in samples_of(path):
        busy += count
        group = next(
            (
                g
                for frame in reversed(frames)
                for g, marks in LEAF_GROUPS.items()
                if any(mark in frame for mark in marks)
            ),
            "other (interpreter, asyncio, stdlib)",
        )
        found[group] += count
    return {g: 100 * n / max(busy, 1) for g, n in found.most_common()}


def top_frames(path: Path, count: int = 25) -> list[tuple[float, str]]:
    """This repo's functions by inclusive share of the GIL-holding samples."""
    found: collections.Counter[str] = collections.Counter()
    busy = 0
    for frames, samples in samples_of(path):
        busy += samples
        names = {f.split(":")[0] + ")" for f in frames if any(mark in f for mark in REPO)}
        for name in names:
            found[name] += samples
    return [(100 * n / max(busy, 1), name) for name, n in found.most_common(count)]


async def main() -> None:
    OUT.mkdir(exist_ok=True)
    async with stack(Layout(bare=True)) as bench, api_client(bench.url(), 20) as http:
        clerk = Clerk(http)
        shape = await reference_shape(bench, clerk)
        actions = len(shape.segments) - 1
        await drive_bare(bench.client, bench.bare_queue, new_id("bare-w-"), shape)
        meter = CpuMeter(bench, ["worker-1", "temporal", "api-1"])
        spies = [spy(bench, "worker-1"), spy(bench, "api-1")]
        await asyncio.sleep(1)
        ids = [new_id("P") for _ in range(PARCELS)]
        meter.start()
        load = time.process_time()
        seconds = await in_parallel(PARCELS, 20, lambda i: clerk.drive(ids[i], INVESTIGATION))
        load = time.process_time() - load
        project = meter.stop()
        for one in spies:
            one.send_signal(signal.SIGINT)
            one.wait(60)
        bare_meter = CpuMeter(bench, ["bare", "temporal"])
        bare_meter.start()
        bare_load = time.process_time()
        bare_s = await in_parallel(
            PARCELS,
            20,
            lambda i: drive_bare(bench.client, bench.bare_queue, f"bare-{ids[i]}", shape),
        )
        bare_load = time.process_time() - bare_load
        bare = bare_meter.stop()
    per = PARCELS * actions
    print(
        f"{PARCELS} parcels in {seconds:.1f} s; bare {bare_s:.1f} s ({WORKFLOW} {shape.segments})"
    )
    print("CPU ms per action (registration and uploads included, spread over the actions):")

    def ms(seconds: float) -> str:
        return f"{seconds / per * 1000:6.1f}"

    print(f"  worker {ms(project['worker-1'])}   bare worker {ms(bare['bare'])}")
    print(f"  server {ms(project['temporal'])}   bare server {ms(bare['temporal'])}")
    print(f"  API    {ms(project['api-1'])}")
    print(f"  client {ms(load)}   bare client {ms(bare_load)}")
    for name in ("worker", "api"):
        busy, groups = shares(OUT / f"{name}.txt")
        print(f"\n{name}: {busy} busy samples ({OUT / name}.txt); inclusive shares")
        for group, share in groups.items():
            print(f"  {share:5.1f}%  {group}")
        print("  by innermost frame (adds up to 100 %)")
        for group, share in leaf_shares(OUT / f"{name}.txt").items():
            print(f"  {share:5.1f}%  {group}")
        print("  repo functions:")
        for share, frame in top_frames(OUT / f"{name}.txt", 18):
            print(f"  {share:5.1f}%  {frame}")


if __name__ == "__main__":
    asyncio.run(main())
