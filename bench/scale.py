"""Scale: many open parcels waiting on their deadline timers, durably (the dev server on
its SQLite file, as `make run` keeps it); BENCH_SCALE_PARCELS of them (100,000 for
`python -m bench scale`, a few hundred in the default run).

Seeding. Parcels start through the Temporal client as `POST /parcels` starts them (the
same input, search attributes and summary, then the `started` update), in batches with
bounded concurrency; the real worker's activities load the policy, decide the intake
rules and write the registry rows. The mix spreads them over realistic first steps and
deadlines: closure screening (60 days, two districts), investigation by the reserve
agency or the land user (180 days), release (30 days); starting them takes hours at
100,000, so the deadlines are spread over those hours too.

Then, measured: worker, server and API RSS (peaks, sampled through the run); `GET /tasks`
and `GET /parcels?overdue=true` through the API; the visibility queries the Web UI sends;
BURST parcels whose deadlines fall in the same minute (their policy is rewritten while
they start so every deadline lands on one instant): how long until every one is escalated
(registry row overdue, escalation notice), and what the reminder and the escalation add
to a history; a worker restart: how long until it polls, what a cold workflow costs
(its history replayed), how long the cache takes to warm, and whether actions are back
to their speed before the restart.
"""

from __future__ import annotations

import asyncio
import functools
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import func
from sqlmodel import Session, col, create_engine, select
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy

from bench import Row
from bench.drive import api_client, in_parallel, operating_site
from bench.fixtures import OTHER_DISTRICT, auth, clean_facts, eventually, facts, held_facts
from bench.stack import Layout, Stack, percentile, stack
from landflow.facts import ParcelFacts
from landflow.messages import (
    PARCEL_WORKFLOW,
    STARTED_UPDATE,
    ParcelStart,
    StartedView,
    workflow_id,
)
from landflow.settings import PACKAGE_DIR
from registry.tables import NoticeRow, ParcelRow
from workflows import visibility
from workflows.history import fetch_history

DEFAULT_PARCELS = 100_000
CONCURRENCY = 48  # parcels starting at once (each waits for its first step)
BATCH = 1_000
RSS_LIMIT_MIB = 1024
API_LIMIT_MS = 200
VISIBILITY_LIMIT_MS = 1000
SAMPLES = 30
# The burst's reminders come this long before its deadlines (10 s for a burst under 500,
# which starts in seconds)
REMIND_LEAD_S = 120
RUNNING = f'WorkflowType = "{PARCEL_WORKFLOW}" AND ExecutionStatus = "Running"'
LIST_QUERY = f'{RUNNING} AND WaitingOn = "district_epb" AND District = "朝阳区"'
COUNT_QUERY = f"{RUNNING} AND Overdue = true"


def parcels_wanted() -> int:
    return int(os.environ.get("BENCH_SCALE_PARCELS", DEFAULT_PARCELS))


def burst_size(parcels: int) -> int:
    return min(1_000, max(30, parcels // 10))


def say(message: str) -> None:
    print(f"[scale {datetime.now().strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the mix ----------------------------------------------------------------------------

MIX: tuple[tuple[str, Callable[[str], dict[str, Any]]], ...] = (
    ("investigation", operating_site),  # reserve agency, 180 days
    ("screening", facts),  # district EPB of 朝阳区, 60 days
    ("investigation", operating_site),
    ("held", held_facts),  # the land user investigates, 180 days
    ("screening", lambda pid: facts(pid, district=OTHER_DISTRICT)),  # 海淀区
    ("investigation", operating_site),
    ("screening", facts),
    ("release", clean_facts),  # planning bureau, 30 days
    ("investigation", operating_site),
    ("held", held_facts),
)


def seed_id(index: int) -> str:
    return f"S{index:07d}"


def kind_of(index: int) -> str:
    return MIX[index % len(MIX)][0]


async def start_direct(client: Client, queue: str, body: dict[str, Any]) -> StartedView:
    """What POST /parcels does: start the workflow, wait until its first step is open."""
    parcel = ParcelFacts.model_validate(body)
    handle = await client.start_workflow(
        PARCEL_WORKFLOW,
        ParcelStart.register(parcel.submitted()),
        id=workflow_id(parcel.parcel_id),
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        search_attributes=visibility.initial_search_attributes(parcel),
        static_summary=visibility.static_summary(parcel),
    )
    return await handle.execute_update(STARTED_UPDATE, result_type=StartedView)


# --- memory ---------------------------------------------------------------------------


class Peaks:
    """The highest RSS of each program, sampled every few seconds by `watch`."""

    def __init__(self, bench: Stack, names: list[str]) -> None:
        self.bench, self.names = bench, names
        self.peak = dict.fromkeys(names, 0.0)
        self.last = dict.fromkeys(names, 0.0)

    def sample(self) -> None:
        for name in self.names:
            try:
                self.last[name] = self.bench.rss_mib(name)
            except Exception:  # a program being restarted: skip this sample
                continue
            self.peak[name] = max(self.peak[name], self.last[name])

    async def watch(self, every: float = 3.0) -> None:
        while True:
            self.sample()
            await asyncio.sleep(every)


# --- the registry, read directly ------------------------------------------------------


class Registry:
    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def count(self, *where: Any) -> int:
        with Session(self.engine) as session:
            return int(
                session.exec(select(func.count()).select_from(ParcelRow).where(*where)).one()
            )

    def rows(self, pids: list[str]) -> list[ParcelRow]:
        with Session(self.engine) as session:
            return list(session.exec(select(ParcelRow).where(col(ParcelRow.parcel_id).in_(pids))))

    def escalations(self, pids: list[str]) -> int:
        with Session(self.engine) as session:
            query = select(func.count()).select_from(NoticeRow)
            where = (col(NoticeRow.parcel_id).in_(pids), NoticeRow.kind == "escalation")
            return int(session.exec(query.where(*where)).one())

    def close(self) -> None:
        self.engine.dispose()


async def until(probe: Callable[[], bool], what: str, timeout: float, every: float = 1.0) -> float:
    """Poll a registry read (off the event loop) until it holds; the seconds it took."""
    started = time.monotonic()
    await eventually(lambda: asyncio.to_thread(probe), what, timeout, every)
    return time.monotonic() - started


# --- seeding --------------------------------------------------------------------------


async def seed(bench: Stack, registry: Registry, peaks: Peaks, count: int) -> dict[str, float]:
    started = time.perf_counter()
    done = 0
    failures: list[str] = []

    async def one(first: int, offset: int) -> None:
        nonlocal done
        index = first + offset
        pid = seed_id(index)
        body = MIX[index % len(MIX)][1](pid)
        for attempt in range(5):  # a transient RPC failure under load: try again
            try:
                await start_direct(bench.client, bench.task_queue, body)
                break
            except Exception as exc:
                if "already" in str(exc).lower():  # started by the attempt that timed out
                    break
                if attempt == 4:
                    failures.append(f"{pid}: {exc!r}")
                await asyncio.sleep(2)
        done += 1

    enough = asyncio.Event()  # SIGUSR1: stop seeding after this batch, measure what there is
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, enough.set)
    for first in range(0, count, BATCH):
        if enough.is_set():
            say(f"SIGUSR1: seeding stops at {first:,} parcels")
            count = first
            break
        size = min(BATCH, count - first)
        await in_parallel(size, CONCURRENCY, functools.partial(one, first))
        bench.check("worker-1", "temporal")
        elapsed = time.perf_counter() - started
        say(
            f"{done:,}/{count:,} started in {elapsed:,.0f} s ({done / elapsed:.1f}/s); "
            + ", ".join(f"{n} {peaks.last[n]:.0f} MiB" for n in peaks.names)
        )
    if failures:
        raise RuntimeError(f"{len(failures)} parcels did not start: {failures[:5]}")
    asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
    starting = time.perf_counter() - started
    waiting = col(ParcelRow.waiting_on) != ""
    settled = await until(
        lambda: registry.count(waiting) >= count, "every parcel in the registry", 600, 2
    )
    return {
        "parcels": count,
        "start_s": starting,
        "settle_s": settled,
        "rate": count / (starting + settled),
    }


# --- reads ----------------------------------------------------------------------------


async def latencies(
    call: Callable[[], Awaitable[Any]], check: Callable[[Any], None]
) -> list[float]:
    samples = []
    for _ in range(SAMPLES):
        begin = time.perf_counter()
        result = await call()
        samples.append(time.perf_counter() - begin)
        check(result)
    return samples


def ok(what: str, at_least: int = 1) -> Callable[[httpx.Response], None]:
    def check(response: httpx.Response) -> None:
        body = response.json() if response.status_code == 200 else {}
        if response.status_code != 200 or body.get("total", 0) < at_least:
            raise RuntimeError(f"{what}: {response.status_code} {response.text[:300]}")

    return check


async def reads(bench: Stack, http: httpx.AsyncClient, overdue: int) -> dict[str, list[float]]:
    tasks = await latencies(
        lambda: http.get("/tasks", params={"limit": 100}, headers=auth("reserve_agency")),
        ok("GET /tasks (reserve agency)"),
    )
    district = await latencies(
        lambda: http.get("/tasks", params={"limit": 100}, headers=auth("district_epb")),
        ok("GET /tasks (district EPB)"),
    )
    late = await latencies(
        lambda: http.get("/parcels", params={"overdue": "true", "limit": 100}, headers=auth("ops")),
        ok("GET /parcels?overdue=true", overdue),
    )

    async def first_page() -> list[Any]:
        return [w async for w in bench.client.list_workflows(LIST_QUERY, limit=100, page_size=100)]

    def full(page: list[Any]) -> None:
        if len(page) < 1:
            raise RuntimeError(f"the visibility list returned {len(page)} workflows")

    async def count() -> Any:
        return await bench.client.count_workflows(COUNT_QUERY)

    def counted(result: Any) -> None:
        if result.count < overdue:
            raise RuntimeError(f"visibility counts {result.count} overdue, expected {overdue}")

    listed = await latencies(first_page, full)
    counts = await latencies(count, counted)
    return {"tasks": tasks, "district": district, "overdue": late, "list": listed, "count": counts}


# --- deadlines in the same minute -------------------------------------------------------


def remind_lead(size: int) -> float:
    return REMIND_LEAD_S if size >= 500 else 10


def write_policy(path: Path, release_s: float, remind_s: float) -> None:
    """The packaged policy with the release step due in `release_s` seconds, reminded
    `remind_s` before; replaced atomically (the worker reads it at every start)."""
    policy = yaml.safe_load((PACKAGE_DIR / "policy.yaml").read_text(encoding="utf-8"))
    days = max(release_s, remind_s + 1) / 86_400
    policy["steps"]["release"] = {
        "days": days,
        "remind_days_before": remind_s / 86_400,
        "escalate_to": "ops",
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    os.replace(tmp, path)


def restore_policy(path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes((PACKAGE_DIR / "policy.yaml").read_bytes())
    os.replace(tmp, path)


async def history_sizes(client: Client, pids: list[str]) -> list[int]:
    return [sum(e.ByteSize() for e in (await fetch_history(client, pid)).events) for pid in pids]


async def burst(
    bench: Stack, registry: Registry, policy: Path, size: int, rate: float
) -> dict[str, Any]:
    """`size` parcels due at one instant: start them while rewriting their deadline so it
    lands on the target, then time the reminders and the escalations."""
    pids = [f"B{i:06d}" for i in range(size)]
    lead = size / (0.6 * rate) + remind_lead(size) + 5  # all started before the reminders
    target = time.time() + lead
    for first in range(0, size, 25):
        write_policy(policy, target - time.time(), remind_lead(size))
        batch = pids[first : first + 25]
        await asyncio.gather(
            *(start_direct(bench.client, bench.task_queue, clean_facts(p)) for p in batch)
        )
    restore_policy(policy)
    # `started` answers once the first step is open; its registry row follows a moment later
    with_deadline = (col(ParcelRow.parcel_id).in_(pids), col(ParcelRow.deadline).is_not(None))
    await until(lambda: registry.count(*with_deadline) >= size, "burst rows", 120, 0.5)
    rows = registry.rows(pids)
    deadlines = sorted(r.deadline.replace(tzinfo=UTC).timestamp() for r in rows if r.deadline)
    if len(deadlines) != size:
        raise RuntimeError(f"{len(deadlines)} of {size} burst parcels have a deadline")
    sampled = random.Random(1).sample(pids, min(20, size))
    before = await history_sizes(bench.client, sampled)
    reminded_at = deadlines[0] - remind_lead(size)
    if time.time() > reminded_at:
        say("the burst's reminders came before its parcels had all started: lead too short")
    await asyncio.sleep(max(0.0, deadlines[-1] - time.time()))

    def all_escalated() -> bool:
        return (
            registry.escalations(pids) >= size
            and registry.count(col(ParcelRow.parcel_id).in_(pids), col(ParcelRow.overdue)) >= size
        )

    after_last = await until(all_escalated, f"{size} escalations", 1800, 0.5)
    lags = sorted(
        (r.updated_at.replace(tzinfo=UTC).timestamp() - r.deadline.replace(tzinfo=UTC).timestamp())
        for r in registry.rows(pids)
        if r.deadline
    )
    after = await history_sizes(bench.client, sampled)
    grown = [a - b for a, b in zip(after, before, strict=True)]
    return {
        "size": size,
        "spread_s": deadlines[-1] - deadlines[0],
        "after_last_s": after_last,
        "lag_p50_s": percentile(lags, 50),
        "lag_max_s": lags[-1],
        "bytes_per_parcel": sum(grown) / len(grown),
        "history_bytes": sum(after) / len(after),
    }


# --- a worker restart -----------------------------------------------------------------


async def restart(bench: Stack, http: httpx.AsyncClient, parcels: int) -> dict[str, float]:
    """Warm baseline, restart, cold reads and actions, the time to warm the cache, and
    actions after warming; on parcels waiting for their closure screening in 朝阳区."""
    screening = [seed_id(i) for i in range(parcels) if MIX[i % len(MIX)][1] is facts]
    random.Random(2).shuffle(screening)
    per = max(5, min(50, len(screening) // 6))
    warm, cold_reads, cold_acts, after_acts = (screening[i * per : (i + 1) * per] for i in range(4))
    cache = screening[4 * per : 4 * per + 1000]

    async def read(pid: str) -> float:
        begin = time.perf_counter()
        response = await http.get(f"/parcels/{pid}", headers=auth("auditor"))
        if response.status_code != 200:
            raise RuntimeError(f"GET /parcels/{pid}: {response.status_code} {response.text}")
        return time.perf_counter() - begin

    async def screen(pid: str) -> float:
        begin = time.perf_counter()
        response = await http.post(
            f"/parcels/{pid}/actions/closure_screening",
            json={"result": "cleared", "notes": "复核无异常"},
            headers={**auth("district_epb"), "Idempotency-Key": f"{pid}-screening"},
        )
        if response.status_code != 200:
            raise RuntimeError(f"screening {pid}: {response.status_code} {response.text}")
        return time.perf_counter() - begin

    for pid in [*warm, *cold_reads, *cold_acts, *after_acts]:
        await read(pid)  # in the worker's cache now
    warm_reads = [await read(pid) for pid in warm]
    warm_acts = [await screen(pid) for pid in warm]
    bench.stop("worker-1")
    polling = await bench.start("worker-1")
    cold_read = [await read(pid) for pid in cold_reads]
    cold_act = [await screen(pid) for pid in cold_acts]
    begin = time.perf_counter()
    await in_parallel(len(cache), 20, lambda i: read(cache[i]))
    warming = time.perf_counter() - begin
    for pid in after_acts:
        await read(pid)
    again = [await screen(pid) for pid in after_acts]
    return {
        "polling_s": polling,
        "warm_read_ms": percentile(warm_reads, 50) * 1000,
        "cold_read_ms": percentile(cold_read, 50) * 1000,
        "warm_act_ms": percentile(warm_acts, 50) * 1000,
        "cold_act_ms": percentile(cold_act, 50) * 1000,
        "after_act_ms": percentile(again, 50) * 1000,
        "cache_parcels": len(cache),
        "warming_s": warming,
    }


# --- the run --------------------------------------------------------------------------


async def measure(parcels: int) -> tuple[dict[str, Any], Peaks]:
    layout = Layout(
        server=os.environ.get("BENCH_SCALE_SERVER", "wal"),
        settings={"action_timeout_s": "30", "policy_file": "{tmp}/policy.yaml"},
    )
    async with stack(layout, start=False) as bench:
        policy = Path(bench.env["LANDFLOW_POLICY_FILE"])
        restore_policy(policy)  # the packaged policy, until the burst rewrites it
        await bench.start_all()
        peaks = Peaks(bench, ["worker-1", "temporal", "api-1"])
        watcher = asyncio.create_task(peaks.watch())
        registry = Registry(bench.env["LANDFLOW_DATABASE_URL"])
        try:
            say(f"seeding {parcels:,} parcels")
            seeded = await seed(bench, registry, peaks, parcels)
            say(f"seeded: {seeded}")
            size = burst_size(int(seeded["parcels"]))
            burst_got = await burst(bench, registry, policy, size, seeded["rate"])
            say(f"burst: {burst_got}")
            async with api_client(bench.url(), 20, timeout=60) as http:
                read_got = await reads(bench, http, size)
                say(
                    "reads: "
                    + ", ".join(
                        f"{k} p95 {percentile(v, 95) * 1000:.0f} ms" for k, v in read_got.items()
                    )
                )
                restart_got = await restart(bench, http, int(seeded["parcels"]))
                say(f"restart: {restart_got}")
            peaks.sample()
        finally:
            watcher.cancel()
            registry.close()
    return {"seeded": seeded, "burst": burst_got, "reads": read_got, "restart": restart_got}, peaks


def rows(wanted: int, got: dict[str, Any], peaks: Peaks) -> list[Row]:
    seeded, fired, read, again = got["seeded"], got["burst"], got["reads"], got["restart"]
    parcels = seeded["parcels"]
    scale = f"scale {wanted:,}"
    if parcels < wanted:
        scale += f" (stopped at {parcels:,})"

    def p95(name: str) -> float:
        return round(percentile(read[name], 95) * 1000, 1)

    seeding = (
        f"{parcels:,} open parcels, started at {seeded['rate']:.1f}/s "
        f"({seeded['start_s'] / 60:.0f} min, registry settled {seeded['settle_s']:.0f} s later)"
    )
    n = fired["size"]
    return [
        Row(
            f"{scale}: worker RSS peak",
            round(peaks.peak["worker-1"]),
            "MiB",
            None,
            RSS_LIMIT_MIB,
            False,
            seeding,
        ),
        Row(
            f"{scale}: server RSS peak",
            round(peaks.peak["temporal"]),
            "MiB",
            None,
            None,
            False,
            f"{seeding}; dev server on its SQLite file",
        ),
        Row(
            f"{scale}: API RSS peak", round(peaks.peak["api-1"]), "MiB", None, None, False, seeding
        ),
        Row(
            f"{scale}: GET /tasks p95",
            max(p95("tasks"), p95("district")),
            "ms",
            None,
            API_LIMIT_MS,
            False,
            f"{parcels:,} parcels; reserve agency p95 {p95('tasks')} ms, district EPB "
            f"p95 {p95('district')} ms (limit 100, totals and counts per stage); {SAMPLES} each",
        ),
        Row(
            f"{scale}: GET /parcels?overdue=true p95",
            p95("overdue"),
            "ms",
            None,
            API_LIMIT_MS,
            False,
            f"{n} overdue of {parcels + n:,}; limit 100 with the total; {SAMPLES} samples",
        ),
        Row(
            f"{scale}: visibility query p95",
            max(p95("list"), p95("count")),
            "ms",
            None,
            VISIBILITY_LIMIT_MS,
            False,
            f"list (first 100) {LIST_QUERY!r}: p95 {p95('list')} ms; count {COUNT_QUERY!r}: "
            f"p95 {p95('count')} ms",
        ),
        Row(
            f"{scale}: {n} deadlines in one minute, all escalated after",
            round(fired["after_last_s"], 1),
            "s",
            None,
            None,
            False,
            f"deadlines spread over {fired['spread_s']:.1f} s; escalated (registry overdue + "
            f"notice) {fired['after_last_s']:.1f} s after the last; per parcel lag p50 "
            f"{fired['lag_p50_s']:.1f} s, max {fired['lag_max_s']:.1f} s",
        ),
        Row(
            f"{scale}: history per deadline (reminder + escalation)",
            round(fired["bytes_per_parcel"]),
            "bytes",
            None,
            None,
            False,
            f"mean over 20 of the {n} parcels; their whole history "
            f"{fired['history_bytes']:,.0f} B; "
            f"{n} parcels: {fired['bytes_per_parcel'] * n / 2**20:.1f} MiB",
        ),
        Row(
            f"{scale}: worker restart until polling",
            round(again["polling_s"], 1),
            "s",
            None,
            None,
            False,
            f"SIGTERM, new process: imports, rules, registry check; GET /parcels/{{id}} warm "
            f"{again['warm_read_ms']:.0f} ms, cold (history replayed) "
            f"{again['cold_read_ms']:.0f} ms",
        ),
        Row(
            f"{scale}: cache warm after restart",
            round(again["warming_s"], 1),
            "s",
            None,
            None,
            False,
            f"{again['cache_parcels']} parcels read at 20 at once "
            f"({again['cache_parcels'] / again['warming_s']:.0f}/s); an action p50 warm before "
            f"{again['warm_act_ms']:.0f} ms, cold after the restart {again['cold_act_ms']:.0f} ms, "
            f"warm again {again['after_act_ms']:.0f} ms",
        ),
        Row(
            f"{scale}: action after restart, warm again vs before",
            round(again["after_act_ms"], 1),
            "ms",
            round(again["warm_act_ms"], 1),
            1.5,
            False,
            "back to full speed: a closure screening once the cache is warm, against one "
            "before the restart",
        ),
    ]


async def run() -> list[Row]:
    parcels = parcels_wanted()
    got, peaks = await measure(parcels)
    return rows(parcels, got, peaks)
