"""Scale: many open parcels waiting on their deadline timers (10,000; 1,000 quick).

Nine in ten wait for an investigation report (a 180-day deadline: a reminder timer
pending); one in ten waits for release under a policy whose release deadline is a few
seconds, so it is overdue and escalated, and `overdue=true` has rows to return. Most are
started directly through the Temporal client, the way the API starts them, some through
the API. Measured: worker and dev-server RSS (peak), `GET /parcels?overdue=true`, and
the visibility queries the Web UI sends (list and count with Overdue = true).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import func
from sqlmodel import Session, create_engine, select

from bench import Row
from bench.lifecycle import api_client, in_parallel, parcel_facts, start_parcel
from bench.stack import QUICK, Stack, Timer, percentile, stack
from landflow import visibility
from landflow.contracts import ParcelFacts
from landflow.registry import ParcelRow
from landflow.settings import PACKAGE_DIR
from landflow.temporal import workflow_id
from tests.helpers import auth, clean_facts

PARCELS = 300 if QUICK else 10_000  # quick: seeding runs at ~10 parcels/s here
OVERDUE_EVERY = 10  # one parcel in ten waits on an expired release deadline
VIA_API_EVERY = 50  # one in fifty is registered through the API
SAMPLES = 20
RSS_LIMIT_MIB = 1024
QUERY_LIMIT_MS = 1000
VISIBILITY = 'WorkflowType = "ParcelWorkflow" AND ExecutionStatus = "Running" AND Overdue = true'


def short_release_policy(path: Path) -> Path:
    """The packaged policy with a release deadline of about nine seconds."""
    policy = yaml.safe_load((PACKAGE_DIR / "policy.yaml").read_text(encoding="utf-8"))
    policy["steps"]["release"] = {"days": 0.0001, "remind_days_before": 0, "escalate_to": "ops"}
    path.write_text(yaml.safe_dump(policy), encoding="utf-8")
    return path


def body_of(index: int) -> dict[str, Any]:
    pid = f"S{index:06d}"
    return clean_facts(pid) if index % OVERDUE_EVERY == 0 else parcel_facts(pid)


async def start_direct(bench: Stack, body: dict[str, Any]) -> None:
    """What POST /parcels does: start, then wait until the first step is open (so the
    worker has at most the seeding concurrency in flight, as behind the API)."""
    facts = ParcelFacts.model_validate(body)
    handle = await bench.client.start_workflow(
        "ParcelWorkflow",
        facts.submitted(),
        id=workflow_id(facts.parcel_id),
        task_queue=bench.task_queue,
        search_attributes=visibility.initial_search_attributes(facts),
        static_summary=visibility.static_summary(facts),
    )
    await handle.execute_update("started")


class Peak:
    """The highest RSS of the worker and the server, sampled once a second."""

    def __init__(self, bench: Stack) -> None:
        self.bench = bench
        self.worker = self.server = 0.0

    def sample(self) -> None:
        assert self.bench.worker is not None
        self.worker = max(self.worker, self.bench.worker.rss_mib())
        self.server = max(self.server, self.bench.server.rss_mib())

    async def watch(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(1)


async def settle(bench: Stack, peak: Peak, timeout_s: float) -> float:
    """Wait until every parcel waits on its step and the overdue ones are flagged."""
    engine = create_engine(bench.env["LANDFLOW_DATABASE_URL"])
    overdue = len(range(0, PARCELS, OVERDUE_EVERY))
    deadline = time.monotonic() + timeout_s
    with Timer() as timer:
        while True:
            peak.sample()
            assert bench.worker is not None
            bench.worker.check()
            with Session(engine) as session:
                waiting = session.exec(
                    select(func.count()).where(ParcelRow.waiting_on.is_not(None))
                ).one()
                flagged = session.exec(select(func.count()).where(ParcelRow.overdue)).one()
            if waiting >= PARCELS and flagged >= overdue:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"after {timeout_s:.0f} s: {waiting} waiting, {flagged} overdue")
            await asyncio.sleep(1)
    engine.dispose()
    return timer.seconds


async def latencies(call: Any, check: Any) -> list[float]:
    samples = []
    for _ in range(SAMPLES):
        with Timer() as timer:
            result = await call()
        check(result)
        samples.append(timer.seconds)
    return samples


async def measure(bench: Stack) -> dict[str, Any]:
    peak = Peak(bench)
    overdue = len(range(0, PARCELS, OVERDUE_EVERY))
    async with api_client(bench, 20) as http:

        async def seed(index: int) -> None:
            body = body_of(index)
            if index % VIA_API_EVERY == 1:
                await start_parcel(http, body)
            else:
                await start_direct(bench, body)

        watcher = asyncio.create_task(peak.watch())
        try:
            started = await in_parallel(PARCELS, 50, seed)
            settled = await settle(bench, peak, timeout_s=120)
        finally:
            watcher.cancel()

        async def overdue_list() -> httpx.Response:
            params = {"overdue": "true", "limit": "1000"}
            return await http.get("/parcels", params=params, headers=auth("ops"))

        def rows_back(response: httpx.Response) -> None:
            if response.status_code != 200 or response.json()["count"] != min(overdue, 1000):
                raise RuntimeError(f"GET /parcels?overdue=true: {response.text[:300]}")

        api_samples = await latencies(overdue_list, rows_back)

    async def first_page() -> list[Any]:
        return [w async for w in bench.client.list_workflows(VISIBILITY, limit=100, page_size=100)]

    def page_full(page: list[Any]) -> None:
        if len(page) != min(overdue, 100):
            raise RuntimeError(f"visibility list returned {len(page)} workflows")

    async def count() -> Any:
        return await bench.client.count_workflows(VISIBILITY)

    def counted(result: Any) -> None:
        if result.count != overdue:
            raise RuntimeError(f"visibility count says {result.count}, expected {overdue}")

    list_samples = await latencies(first_page, page_full)
    count_samples = await latencies(count, counted)
    peak.sample()
    return {
        "peak": peak,
        "seeding": started + settled,
        "api": percentile(api_samples, 95) * 1000,
        "list": percentile(list_samples, 95) * 1000,
        "count": percentile(count_samples, 95) * 1000,
    }


async def run() -> list[Row]:
    async with stack() as bench:
        bench.env["LANDFLOW_POLICY_FILE"] = str(short_release_policy(bench.tmp / "policy.yaml"))
        bench.start_worker()
        await bench.start_api()
        got = await measure(bench)
    peak: Peak = got["peak"]
    overdue = len(range(0, PARCELS, OVERDUE_EVERY))
    setup = (
        f"{PARCELS} open parcels ({overdue} overdue), seeded and settled in {got['seeding']:.0f} s"
    )
    per = f"p95 of {SAMPLES}; {setup}"
    return [
        Row(
            "scale: worker RSS (peak)", round(peak.worker), "MiB", None, RSS_LIMIT_MIB, False, setup
        ),
        Row("scale: dev server RSS (peak)", round(peak.server), "MiB", None, None, False, setup),
        Row(
            "scale: GET /parcels?overdue=true",
            round(got["api"], 1),
            "ms",
            None,
            QUERY_LIMIT_MS,
            False,
            f"limit=1000, {per}",
        ),
        Row(
            "scale: visibility list Overdue=true",
            round(got["list"], 1),
            "ms",
            None,
            QUERY_LIMIT_MS,
            False,
            f"first page of 100, {per}",
        ),
        Row(
            "scale: visibility count Overdue=true",
            round(got["count"], 1),
            "ms",
            None,
            QUERY_LIMIT_MS,
            False,
            per,
        ),
    ]
