"""Scale-out on existing parts: 3 worker processes and 2 API processes on one Temporal dev
server and one PostgreSQL registry, parcels through mixed paths from both APIs
alternately, one worker SIGKILLed half-way. Every parcel must end as an undisturbed one
of its path, with each decision and list entry in the registry exactly once, and
`landflow registry verify` must find no difference.

LANDFLOW_SCALE_OUT_PARCELS sets how many parcels (300 by default, as issue 14 asks).
The clients retry as real ones do (the same Idempotency-Key after a 503 or 429), so an
action caught by the kill applies once whatever the retries.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Iterable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine, select
from temporalio.api.enums.v1 import EventType

from bench.drive import MIX, Clerk, Drive, Path, api_client, new_id
from bench.scale_out import drive_mix, scale_out_stack
from bench.stack import ROOT, Stack
from landflow.messages import workflow_id
from registry.tables import DecisionRow, ListEntryRow, ParcelRow, TaskRow
from tests.conftest import fresh_postgres_database
from tests.helpers import auth

pytestmark = pytest.mark.faults

PARCELS = int(os.environ.get("LANDFLOW_SCALE_OUT_PARCELS", "300"))
T = TypeVar("T")
KILLED = "worker-2"
RECOVERY = {  # what a history shows when another worker took over from a killed one
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
}


@pytest.fixture
def registry_url(postgres_server: str) -> Iterator[str]:
    with fresh_postgres_database(postgres_server) as url:
        yield url


def signature(parcel: dict[str, Any]) -> dict[str, Any]:
    """What must not depend on which worker or API served the parcel, or on the kill
    (the spot-check is drawn at random per parcel, so its action is left out)."""
    return {
        "stage": parcel["stage"],
        "status": parcel["status"],
        "stages": [v["stage"] for v in parcel["history"]],
        "actions": [
            (a["action"], a["role"]) for a in parcel["actions"] if a["action"] != "spot_check"
        ],
        "decisions": [(d["rule"], d["row"], d["outcome"]) for d in parcel["decisions"]],
        "lists": sorted((m["list_name"], m["left_at"] is not None) for m in parcel["lists"]),
    }


async def read(http: httpx.AsyncClient, pid: str) -> dict[str, Any]:
    response = await http.get(f"/parcels/{pid}", headers=auth("auditor"))
    assert response.status_code == 200, response.text
    return response.json()


async def references(bench: Stack) -> dict[str, dict[str, Any]]:
    """One undisturbed parcel per path, by one worker through the first API."""
    paths = list({p.name: p for p in MIX}.values())
    async with api_client(bench.url("api-1"), len(paths)) as http:
        clerk = Clerk(http)

        async def reference(path: Path) -> dict[str, Any]:
            drive = await clerk.drive(new_id("REF"), path)
            return signature(await read(http, drive.pid))

        signatures = await asyncio.gather(*map(reference, paths))
    return {path.name: found for path, found in zip(paths, signatures, strict=True)}


def registry_rows(engine: Engine, run_id: str) -> dict[str, Any]:
    with Session(engine) as session:
        return {
            "decisions": [
                d.decision_id
                for d in session.exec(select(DecisionRow).where(DecisionRow.run_id == run_id))
            ],
            "lists": [
                (e.list_name, e.left_at is not None)
                for e in session.exec(select(ListEntryRow).where(ListEntryRow.run_id == run_id))
            ],
            "parcel": session.get(ParcelRow, run_id),
            "tasks": session.exec(select(TaskRow).where(TaskRow.run_id == run_id)).all(),
        }


async def recovered(bench: Stack, pids: list[str]) -> int:
    """Parcels whose history shows a task or an activity taken over after the kill."""

    async def retried(pid: str) -> bool:
        history = await bench.client.get_workflow_handle(workflow_id(pid)).fetch_history()
        return any(
            e.event_type in RECOVERY
            or (
                e.HasField("activity_task_started_event_attributes")
                and e.activity_task_started_event_attributes.attempt > 1
            )
            for e in history.events
        )

    return sum(await bounded(map(retried, pids)))


async def bounded(calls: Iterable[Awaitable[T]], at_once: int = 16) -> list[T]:
    """Every call's result, at most `at_once` running: 300 parcels checked one after the
    other took longer than driving them."""
    gate = asyncio.Semaphore(at_once)

    async def one(call: Awaitable[T]) -> T:
        async with gate:
            return await call

    return await asyncio.gather(*(one(c) for c in calls))


def verify(bench: Stack) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "service.cli", "registry", "verify"]
    return subprocess.run(
        argv, env=bench.env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def check_parcel(
    parcel: dict[str, Any], drive: Drive, path: Path, expected: dict[str, Any], rows: dict[str, Any]
) -> None:
    pid = drive.pid
    assert signature(parcel) == expected, f"{pid} ({path.name}) differs from an undisturbed parcel"
    taken = sum(1 for name, _ in drive.calls if name not in ("register", "upload"))
    assert len(parcel["actions"]) == taken, (
        f"{pid}: {taken} actions taken, {len(parcel['actions'])} applied"
    )
    ids = [d["id"] for d in parcel["decisions"]]
    assert len(ids) == len(set(ids)), f"{pid}: a decision was recorded twice in the workflow"
    assert Counter(rows["decisions"]) == Counter(ids), (
        f"{pid}: registry decisions {rows['decisions']} vs {ids}"
    )
    assert sorted(rows["lists"]) == sorted((name, True) for name in path.lists), (
        f"{pid}: list entries {rows['lists']}, expected each of {sorted(path.lists)} once, left"
    )
    row = rows["parcel"]
    assert row is not None and (row.stage, row.status) == ("released", "released"), f"{pid}: {row}"
    assert not rows["tasks"], f"{pid}: open tasks left in the registry: {rows['tasks']}"


async def test_three_workers_two_apis_one_killed_mid_run(registry_url: str) -> None:
    # The dev server in WAL mode (half its CPU per event): what is tested is the workers'
    # and APIs' sharing of one server and registry, not the server's own store.
    async with scale_out_stack(3, 2, registry_url, server="wal") as bench:
        await bench.start("worker-1")
        expected = await references(bench)
        await asyncio.gather(bench.start("worker-2"), bench.start("worker-3"))
        before_kill: list[str] = []

        async def kill() -> None:
            assert "rules.decide" in bench.supervisor.log_tail(KILLED, 200_000), (
                f"{KILLED} did no work before it was killed"
            )
            bench.kill(KILLED)
            before_kill.append("killed")

        mixed = await drive_mix(bench, PARCELS, concurrency=12, prefix="SO", halfway=kill)
        assert before_kill == ["killed"], "the worker was never killed"
        assert bench.supervisor.pid(KILLED) is None, f"{KILLED} came back: it must stay dead"
        bench.check("worker-1", "worker-3", "api-1", "api-2")
        print(f"{PARCELS} parcels in {mixed.seconds:.1f} s ({mixed.rate:.2f}/s)")

        https = {name: api_client(bench.url(name), 8) for name in bench.apis}
        engine = create_engine(registry_url, pool_size=8)

        async def checked(index: int, drive: Drive) -> None:
            path = MIX[index % len(MIX)]
            reader = https[bench.apis[(index + 1) % len(bench.apis)]]  # the other API
            parcel = await read(reader, drive.pid)
            rows = await asyncio.to_thread(registry_rows, engine, parcel["run_id"])
            check_parcel(parcel, drive, path, expected[path.name], rows)

        try:
            await bounded(checked(i, d) for i, d in enumerate(mixed.drives))
        finally:
            engine.dispose()
            for http in https.values():
                await http.aclose()

        taken_over = await recovered(bench, [d.pid for d in mixed.drives])
        assert taken_over > 0, (
            "no history shows a task or activity taken over after the kill: it hit nothing"
        )
        retries = sum(d.retries for d in mixed.drives)
        print(f"{taken_over} parcels taken over after the kill; {retries} client retries")
        verified = await asyncio.to_thread(verify, bench)
        assert verified.returncode == 0, f"registry verify:\n{verified.stdout}\n{verified.stderr}"
        assert "0 differences" in verified.stdout, verified.stdout
