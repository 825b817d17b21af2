"""Pages and reads: p95 server time of each workbench and register page, and of the API
reads a client at scale pages through (`GET /tasks`, `GET /parcels?overdue=true`, a
public list), on a registry of 10,000 parcels (1,000 with BENCH_QUICK=1;
BENCH_PAGES_PARCELS sets it: `make bench-scale` runs it with 100,000), target 200 ms.

The registry is filled through `registry.writes` (projections, inbox tasks, list
entries) as the worker would fill it: half of the parcels wait on the 朝阳区 district
EPB (so its inbox pages over thousands of tasks), a third are listed. The parcel page
reads a real parcel's workflow (a dev server and the project's worker run for it).
Requests go through the whole app in-process (ASGI), so the time is the server's.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
from sqlmodel import Session

from api.app import create_app
from api.auth import digest
from api.web import session as web_session
from api.web.routes import install
from bench.fixtures import POLLUTER, dev_server, facts, write_tokens
from landflow.messages import ListChange, ParcelProjection, TaskRow, workflow_id
from landflow.settings import Settings
from landflow.state import Disclosure, Parties
from landflow.vocabulary import BEIJING_DISTRICTS, Role, Stage, Step
from registry import writes
from registry.engine import make_engine
from registry.migrate import upgrade
from service.worker import build_worker

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")
PARCELS = int(os.environ.get("BENCH_PAGES_PARCELS", 1_000 if QUICK else 10_000))
REQUESTS = 20 if QUICK else 60  # per page, after a warm-up
TARGET_MS = 200.0
DISTRICT = "朝阳区"


def projection(index: int, now: datetime) -> ParcelProjection:
    """Parcel `index` of the seeded registry: every other one owed by the 朝阳区 EPB."""
    pid = f"B{index:06d}"
    district = DISTRICT if index % 2 == 0 else BEIJING_DISTRICTS[index % len(BEIJING_DISTRICTS)]
    deadline = now + timedelta(days=(index % 120) - 20)  # some overdue
    step, stage, role = (
        (Step.closure_screening, Stage.closure_screening, Role.district_epb)
        if index % 2 == 0
        else (Step.filing_review, Stage.filing, Role.city_epb)
    )
    task = TaskRow(
        visit=1,
        step=step,
        stage=stage,
        role=role,
        district=district if role == Role.district_epb else None,
        deadline=deadline,
        overdue=deadline < now,
        blocking=True,
        reminded=index % 5 == 0,
    )
    return ParcelProjection(
        parcel_id=pid,
        run_id=f"run-{pid}",
        workflow_id=workflow_id(pid),
        procedure="ParcelWorkflowV2",
        revision=1,
        name=f"地块{index}",
        district=district,
        planned_use="R",
        area_m2=10_000 + index,
        location={"lat": 39.9 + index * 1e-5, "lon": 116.4},
        stage=stage,
        status="running",
        listed=index % 3 == 0,
        overdue=task.overdue,
        deadline=deadline,
        waiting_on=[role],
        tasks=[task],
        parties=Parties.model_validate({"responsible": POLLUTER}),
        disclosure=Disclosure(
            investigation_conclusion="超过筛选值", pollutants_over_screening=["铅"]
        ),
        started_at=now - timedelta(days=index % 365),
        updated_at=now,
    )


def seed(database_url: str, count: int) -> float:
    """Write `count` projections (and list entries) as the activities do; seconds taken."""
    engine = make_engine(database_url)
    upgrade(engine)
    began, now = time.perf_counter(), datetime.now(UTC)
    with Session(engine) as session:
        for index in range(count):
            p = projection(index, now)
            writes.apply_projection(session, projection=p)
            lists: tuple[Literal["suspected", "contaminated", "negative"], ...] = (
                ("contaminated", "negative") if p.listed else ("suspected",)
            )
            for name in lists:
                writes.apply_list_change(
                    session,
                    change=ListChange(
                        parcel_id=p.parcel_id,
                        run_id=p.run_id,
                        list_name=name,
                        change="enter",
                        at=p.started_at,
                        reason="bench",
                        citation="Law 58",
                        name=p.name,
                        district=p.district,
                    ),
                )
    engine.dispose()
    return time.perf_counter() - began


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def measure(
    client: httpx.AsyncClient, path: str, cookies: dict[str, str], headers: dict[str, str]
) -> list[float]:
    for _ in range(3):  # warm-up: templates compiled, connections open
        (await client.get(path, cookies=cookies, headers=headers)).raise_for_status()
    times = []
    for _ in range(REQUESTS):
        began = time.perf_counter()
        response = await client.get(path, cookies=cookies, headers=headers)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, f"{path}: {response.status_code}"
    return times


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def session_cookie(app: Any, settings: Settings, token: str) -> dict[str, str]:
    """The cookie a sign-in with `token` sets (the login form itself is not measured)."""
    value, _ = web_session.issue(app.state.engine, settings.session_key, digest(token))
    return {web_session.SESSION_COOKIE: value}


async def _run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="pages-bench-") as tmp_name:
        return await _measure(Path(tmp_name))  # 140 MB of registry at 100,000 parcels


async def _measure(tmp: Path) -> list[dict[str, Any]]:
    settings = Settings(
        data_dir=tmp,
        database_url=f"sqlite:///{tmp / 'registry.db'}",
        tokens_file=write_tokens(tmp / "tokens.json"),
        task_queue=f"pages-bench-{uuid.uuid4().hex[:6]}",
    )
    seconds = seed(settings.database_url, PARCELS)
    env = await dev_server()
    try:
        async with httpx.AsyncClient() as http, build_worker(env.client, settings, http):
            app = create_app(settings)
            install(app)
            app.state.temporal = env.client
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                real = "BENCH-REAL"
                started = await client.post(
                    "/parcels", json=facts(real), headers=bearer("t-reserve")
                )
                assert started.status_code == 201, started.text
                epb = session_cookie(app, settings, "t-depb")
                agency = session_cookie(app, settings, "t-reserve")
                epb_key, ops_key = bearer("t-depb"), bearer("t-ops")
                first = (await client.get("/tasks", headers=epb_key)).json()
                Get = tuple[str, str, dict[str, str], dict[str, str]]
                gets: list[Get] = [
                    ("pages: GET /ui/login", "/ui/login?token=t-depb", {}, {}),
                    (f"pages: GET /ui/inbox ({PARCELS // 2:,} open steps)", "/ui/inbox", epb, {}),
                    ("pages: GET /ui/inbox?overdue=true", "/ui/inbox?overdue=true", epb, {}),
                    ("pages: GET /ui/parcels/{id}", f"/ui/parcels/{real}", epb, {}),
                    ("pages: GET /ui/parcels/new", "/ui/parcels/new", agency, {}),
                    ("pages: GET /ui/register", "/ui/register?list=contaminated", {}, {}),
                    ("pages: GET /ui/register?q=", "/ui/register?list=suspected&q=B0012", {}, {}),
                    ("pages: GET /ui/register/{id}", "/ui/register/B000003", {}, {}),
                    (f"reads: GET /tasks ({first['total']:,} owed)", "/tasks", {}, epb_key),
                    (
                        "reads: GET /tasks, a later page",
                        f"/tasks?cursor={first['next_cursor']}",
                        {},
                        epb_key,
                    ),
                    ("reads: GET /tasks?overdue=true", "/tasks?overdue=true", {}, epb_key),
                    (
                        f"reads: GET /parcels?overdue=true ({PARCELS:,} parcels)",
                        "/parcels?overdue=true",
                        {},
                        ops_key,
                    ),
                    ("reads: GET /lists/contaminated", "/lists/contaminated", {}, {}),
                ]
                rows = []
                for name, path, cookies, headers in gets:
                    times = await measure(client, path, cookies, headers)
                    rows.append(
                        {
                            "name": f"{name} p95",
                            "value": round(p95(times), 1),
                            "unit": "ms",
                            "baseline": None,
                            "target": TARGET_MS,
                            "higher_is_better": False,
                            "note": f"{PARCELS} parcels in the registry (seeded in "
                            f"{seconds:.0f} s), {REQUESTS} requests, median "
                            f"{statistics.median(times):.1f} ms",
                        }
                    )
            app.state.engine.dispose()
    finally:
        await env.shutdown()
    return rows


def run() -> list[dict[str, Any]]:
    return asyncio.run(_run())


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<50} {row['value']:>8} ms  (target {row['target']:g})  {row['note']}")
