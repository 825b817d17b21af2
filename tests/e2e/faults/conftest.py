"""The fault suite's stack: a dev server, a worker and the API as real processes under
service.processes (supervisord), killed and restarted on purpose (autorestart off), and
the builders every fault test shares: a patient HTTP client that retries as a client
should (same Idempotency-Key), the parcel paths, and readers of the registry.

A module gets one stack (`stack`, module scope); it may set `STACK = {...}` for its own
action timeout, policy changes or a slow worker. After each test, whatever the test left
down is started again, so a failed test does not spoil the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import pytest_asyncio
import yaml
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from landflow.settings import PACKAGE_DIR, Settings
from registry.engine import make_engine
from registry.tables import DecisionRow, ListEntryRow, NoticeRow, ParcelRow
from service.processes import Health, Program, Supervisor
from tests.helpers import (
    ACCEPTED,
    CLEAN_SAMPLES,
    CONTRACTOR,
    DIRTY_SAMPLES,
    EVALUATOR,
    MET_RESULTS,
    TARGETS,
    auth,
    clean_facts,
    eventually,
    facts,
    pdf,
    write_tokens,
)
from workflows import visibility
from workflows.client import connect

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
NEVER = 10**9  # health-check failures before a restart: the probe only tells readiness
CORE = ("temporal", "worker", "api")  # what every test expects running


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def short_policy(tmp: Path, steps: dict[str, dict[str, Any]] | None = None, **top: Any) -> Path:
    """The packaged policy with some steps' entries changed (merged, not replaced)."""
    policy = yaml.safe_load((PACKAGE_DIR / "policy.yaml").read_text(encoding="utf-8"))
    for step, changes in (steps or {}).items():
        policy["steps"][step].update(changes)
    policy.update(top)
    path = tmp / f"policy-{uuid.uuid4().hex[:6]}.yaml"
    path.write_text(yaml.safe_dump(policy, allow_unicode=True), encoding="utf-8")
    return path


# --- the stack --------------------------------------------------------------------------


def environment(settings: Settings) -> dict[str, str]:
    """What each child reads its settings from; no LANDFLOW_* of the caller leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANDFLOW_")}
    env.update(
        LANDFLOW_TEMPORAL_ADDRESS=settings.temporal_address,
        LANDFLOW_DATABASE_URL=settings.database_url,
        LANDFLOW_TOKENS_FILE=str(settings.tokens_file),
        LANDFLOW_TASK_QUEUE=settings.task_queue,
        LANDFLOW_DATA_DIR=str(settings.data_dir),
        LANDFLOW_DOCUMENTS_DIR=str(settings.documents_dir),
        LANDFLOW_POLICY_FILE=str(settings.policy_file),
        LANDFLOW_ACTION_TIMEOUT_S=str(settings.action_timeout_s),
        PYTHONFAULTHANDLER="1",  # a native crash leaves its Python stack in the log
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
    )
    return env


def programs(settings: Settings, env: dict[str, str], slow: list[str] | None) -> list[Program]:
    """The dev server (persistent SQLite, landflow's search attributes), a worker, the
    API; with `slow`, a slow worker too, started only on demand."""
    port = settings.temporal_port
    server = [
        str(BIN / "temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(settings.data_dir / "temporal.db"),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--headless",
        "--log-level",
        "warn",
    ]
    for flag in visibility.cli_flags():
        server += ["--search-attribute", flag]
    cli = [sys.executable, "-m", "service.cli"]
    api_url = f"http://127.0.0.1:{settings.api_port}/healthz"
    common: dict[str, Any] = {"env": env, "cwd": str(REPO), "autorestart": False}
    found = [
        Program(
            "temporal",
            server,
            health=Health("tcp", f"127.0.0.1:{port}", every_s=2, failures=NEVER),
            startsecs=1,
            **common,
        ),
        # started once the server answers (the worker connects at start-up)
        Program("worker", [*cli, "worker"], startsecs=2, autostart=False, **common),
        Program(
            "api",
            [*cli, "api", "--port", str(settings.api_port)],
            health=Health("http", api_url, every_s=2, failures=NEVER),
            startsecs=1,
            stopwaitsecs=5,
            **common,
        ),
    ]
    if slow is not None:
        argv = [sys.executable, "-m", "tests.e2e.faults.slow_worker", "--delay", "120"]
        argv += [f"--slow={name}" for name in slow]
        found.append(Program("slow-worker", argv, startsecs=2, autostart=False, **common))
    return found


class Stack:
    """The supervised processes of one test module, and ways to hurt and heal them."""

    def __init__(self, tmp: Path, options: dict[str, Any]) -> None:
        self.tmp = tmp
        temporal_port, api_port = free_port(), free_port()
        policy = options.get("policy")
        data = tmp / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.settings = Settings(
            data_dir=data,
            temporal_port=temporal_port,
            temporal_address=f"127.0.0.1:{temporal_port}",
            api_port=api_port,
            database_url=f"sqlite:///{data / 'registry.db'}",
            tokens_file=write_tokens(tmp / "tokens.json"),
            task_queue=f"faults-{uuid.uuid4().hex[:8]}",
            documents_dir=data / "documents",
            policy_file=short_policy(tmp, **policy) if policy else PACKAGE_DIR / "policy.yaml",
            action_timeout_s=float(options.get("action_timeout_s", 3.0)),
        )
        self.env = environment(self.settings)
        self.supervisor = Supervisor(
            programs(self.settings, self.env, options.get("slow")), tmp / "supervisor"
        )
        self.api_url = f"http://127.0.0.1:{api_port}"
        self.http = httpx.AsyncClient(base_url=self.api_url, timeout=60)
        self.engine: Engine = make_engine(self.settings.database_url)
        self.client: Client | None = None

    # -- lifetime

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Stack]:
        self.supervisor.start()  # from the main thread: the parent-death signal follows it
        try:
            await self.ready("temporal")
            await self.start("worker")
            await self.ready("api")
            yield self
        finally:
            await self.http.aclose()
            self.supervisor.stop()
            self.engine.dispose()

    async def revive(self) -> None:
        """Start what is down among the core programs; stop a slow worker left running."""
        if "slow-worker" in self.supervisor.programs and self.pid("slow-worker"):
            await self.stop("slow-worker")
        for name in CORE:
            if self.pid(name) is None:
                await self.start(name)

    # -- one program

    def pid(self, name: str) -> int | None:
        return self.supervisor.pid(name)

    async def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send `sig` to the program's process and wait until it is gone."""
        pid = self.pid(name)
        assert pid is not None, f"{name} is not running"
        self.supervisor.signal(name, sig)

        async def gone() -> bool:
            return not psutil.pid_exists(pid) and self.pid(name) is None

        await eventually(gone, f"{name} (pid {pid}) exits after {sig.name}", 30, 0.1, self.tails)

    async def stop(self, name: str) -> None:
        """A graceful stop through supervisord (SIGTERM, SIGKILL after stopwaitsecs)."""
        await asyncio.to_thread(self.supervisor.stop_program, name)

    async def start(self, name: str, timeout: float = 90) -> None:
        """Start it and return once it serves: the server answers, a worker polls."""
        await asyncio.to_thread(self.supervisor.start_program, name)
        await self.ready(name, timeout)

    async def ready(self, name: str, timeout: float = 90) -> None:
        await asyncio.to_thread(self.supervisor.wait_running, name, timeout)
        if name == "temporal":
            await eventually(self._answers, "the dev server answers", timeout, 0.2, self.tails)
        elif name in ("worker", "slow-worker"):
            pid = self.pid(name)
            await eventually(
                lambda: self._polling(pid), f"{name} (pid {pid}) polls", timeout, 0.2, self.tails
            )

    async def temporal(self) -> Client:
        """A client of the dev server (the SDK reconnects after a restart by itself)."""
        if self.client is None:
            self.client = await connect(self.settings)
        return self.client

    async def _answers(self) -> bool:
        try:
            client = await self.temporal()
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=self.settings.namespace),
                retry=False,
                timeout=timedelta(seconds=2),
            )
        except (RuntimeError, RPCError):
            return False
        return True

    async def _polling(self, pid: int | None) -> bool:
        """The worker process `pid` polls both its workflow and its activity queue."""
        if pid is None:
            return False
        client = await self.temporal()
        for kind in (
            TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
        ):
            try:
                answer = await client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=self.settings.namespace,
                        task_queue=TaskQueue(name=self.settings.task_queue),
                        task_queue_type=kind,
                    ),
                    retry=False,
                    timeout=timedelta(seconds=2),
                )
            except RPCError:
                return False
            if not any(p.identity.startswith(f"{pid}@") for p in answer.pollers):
                return False
        return True

    async def registry_ready(self, timeout: float = 90) -> None:
        """Wait for `/readyz`: a worker that starts with the registry behind the engine
        rebuilds it first, and the registry is to be read only once that is done."""

        async def ready() -> bool:
            with contextlib.suppress(httpx.TransportError):
                return (await self.http.get("/readyz")).status_code == 200
            return False

        await eventually(ready, "/readyz answers 200", timeout, 0.3, self.tails)

    def tails(self) -> str:
        return "\n".join(
            f"--- {name} ({self.supervisor.log_path(name)}) ---\n"
            f"{self.supervisor.log_tail(name, 2500)}"
            for name in self.supervisor.programs
        )

    def registry(self) -> Session:
        return Session(self.engine)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """One supervised stack per module, configured by the module's `STACK` dict."""
    stack = Stack(tmp_path_factory.mktemp("faults"), getattr(request.module, "STACK", {}))
    async with stack.running():
        yield stack


@pytest_asyncio.fixture(autouse=True, loop_scope="session")
async def _revive(request: pytest.FixtureRequest) -> AsyncIterator[None]:
    yield
    if "stack" in request.fixturenames:
        await request.getfixturevalue("stack").revive()


# --- a patient client ---------------------------------------------------------------------


@dataclass
class Tally:
    """What the patient client met: retries by cause."""

    causes: Counter[str] = field(default_factory=Counter)

    def __str__(self) -> str:
        return ", ".join(f"{cause} x{n}" for cause, n in sorted(self.causes.items())) or "none"


RETRY = (429, 503)


async def send(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    within_s: float = 150,
    tally: Tally | None = None,
    **request: Any,
) -> httpx.Response:
    """The same request again (same Idempotency-Key, same bytes) after 503, 429 or a
    broken connection, until another answer or `within_s`. A killed worker's activity
    is retried only when its 30 s attempt times out, hence the long default."""
    give_up = time.monotonic() + within_s
    pause = 0.2
    while True:
        try:
            response = await http.request(method, url, **request)
            if response.status_code not in RETRY:
                return response
            why = f"{response.status_code} {response.json().get('error')}"
        except httpx.TransportError as exc:
            why = type(exc).__name__
        if tally is not None:
            tally.causes[why] += 1
        if time.monotonic() > give_up:
            raise AssertionError(f"{method} {url}: still {why} after {within_s:.0f}s")
        await asyncio.sleep(pause)
        pause = min(pause * 1.5, 2.0)


async def start_parcel(
    http: httpx.AsyncClient, body: dict[str, Any], tally: Tally | None = None
) -> dict[str, Any]:
    """POST /parcels, retried; then the parcel once it waits on its first step. A 409
    AlreadyStarted after a retry means the first attempt started it (its answer was
    lost); a 201 at intake means no worker has taken it up yet (a down worker), and
    acting on it before then is refused."""
    pid = body["parcel_id"]
    retried = Tally()
    response = await send(
        http, "POST", "/parcels", json=body, headers=auth("reserve_agency"), tally=retried
    )
    if tally is not None:
        tally.causes.update(retried.causes)
    lost = response.status_code == 409 and response.json()["error"] == "AlreadyStarted"
    if not (lost and retried.causes):
        assert response.status_code == 201, response.text
        if response.json()["waiting_on"]:
            return response.json()
    give_up = time.monotonic() + 150
    while True:
        parcel = await read_parcel(http, pid, tally)
        if parcel["waiting_on"]:
            return parcel
        assert time.monotonic() < give_up, f"{pid} waits on no one 150s after its start"
        await asyncio.sleep(0.3)


async def read_parcel(
    http: httpx.AsyncClient, pid: str, tally: Tally | None = None
) -> dict[str, Any]:
    response = await send(http, "GET", f"/parcels/{pid}", headers=auth("auditor"), tally=tally)
    assert response.status_code == 200, response.text
    return response.json()


# --- parcel paths ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Move:
    """One action of a path: who, with what body, citing a document of `cites` if set."""

    action: str
    role: str
    body: dict[str, Any] = field(default_factory=dict)
    cites: str | None = None


@dataclass(frozen=True)
class Prepared:
    """An action ready to send, and to send again byte for byte."""

    url: str
    json: dict[str, Any]
    headers: dict[str, str]


def report(samples: list[dict[str, Any]]) -> Move:
    body = {"samples": samples, "extent_m2": 50_000, "degree": "heavy"}
    return Move("investigation_report", "reserve_agency", body, "investigation_report")


SCREENING = Move("closure_screening", "district_epb", {"result": "suspected", "notes": "焦油残留"})
SPOT_CHECK = Move("spot_check", "city_epb", {"result": "met"})
ASSESSMENT = Move(
    "risk_assessment_report",
    "responsible_party",
    {"acceptable": False, "targets": TARGETS, "recommendation": "remediation"},
    "risk_assessment_report",
)
PLAN = Move(
    "remediation_plan",
    "responsible_party",
    {"plan": "热脱附", "contractor": CONTRACTOR, "notice_board": True},
    "remediation_plan",
)
EVALUATION = Move(
    "evaluation",
    "third_party_evaluator",
    {"met": True, "results": MET_RESULTS},
    "effect_evaluation_report",
)
RELEASE = Move("release", "planning_land", {"notes": "规划用途确认"})
REMEDIATION: tuple[Move, ...] = (
    SCREENING,
    report(DIRTY_SAMPLES),
    Move("filing_review", "city_epb", ACCEPTED),
    Move("filing_review", "planning_land", ACCEPTED),
    ASSESSMENT,
    Move("risk_assessment_review", "planning_land", ACCEPTED),
    Move("risk_assessment_review", "city_epb", ACCEPTED),
    Move("choose_path", "district_government", {"path": "remediation"}),
    PLAN,
    Move("plan_filing_review", "district_epb", {"decision": "acknowledged"}),
    Move("works_completed", "responsible_party", {"summary": "完工"}),
    Move("commission_evaluator", "responsible_party", {"party": EVALUATOR}),
    EVALUATION,
    Move("removal_application", "responsible_party"),
    Move("removal_review", "city_epb", ACCEPTED),
    Move("removal_review", "planning_land", ACCEPTED),
    RELEASE,
)


@dataclass(frozen=True)
class Route:
    """A path through the procedure: the facts that lead there, its moves, where it ends."""

    name: str
    facts: Callable[[str], dict[str, Any]]
    moves: tuple[Move, ...]
    stages: tuple[str, ...]
    lists: tuple[str, ...]  # lists entered, and left by the end


ROUTES = {
    "release": Route("release", clean_facts, (RELEASE,), ("intake", "release", "released"), ()),
    "clean": Route(
        "clean",
        lambda pid: facts(pid, enterprise_closed=False, industry="other"),
        (
            report(CLEAN_SAMPLES),
            Move("filing_review", "city_epb", ACCEPTED),
            Move("filing_review", "planning_land", ACCEPTED),
            RELEASE,
        ),
        ("intake", "investigation", "filing", "release", "released"),
        (),
    ),
    "remediation": Route(
        "remediation",
        facts,
        REMEDIATION,
        (
            "intake",
            "closure_screening",
            "investigation",
            "filing",
            "risk_assessment",
            "listing",
            "remediation",
            "evaluation",
            "release",
            "released",
        ),
        ("contaminated", "negative", "suspected"),
    ),
}


async def prepare(
    http: httpx.AsyncClient, pid: str, index: int, move: Move, tally: Tally | None = None
) -> Prepared:
    """Upload the cited document (retried with the same bytes) and build the request."""
    body = dict(move.body)
    if move.cites:
        content = pdf(f"{move.cites} {pid} {index}")
        response = await send(
            http,
            "POST",
            f"/parcels/{pid}/documents",
            files={"file": ("report.pdf", content, "application/pdf")},
            data={"kind": move.cites},
            headers=auth(move.role),
            tally=tally,
        )
        assert response.status_code in (200, 201), response.text
        body["documents"] = [{"document_id": response.json()["document_id"], "kind": move.cites}]
    headers = {**auth(move.role), "Idempotency-Key": f"{pid}:{index}:{move.action}"}
    return Prepared(f"/parcels/{pid}/actions/{move.action}", body, headers)


async def perform(
    http: httpx.AsyncClient, prepared: Prepared, tally: Tally | None = None
) -> dict[str, Any]:
    response = await send(
        http, "POST", prepared.url, json=prepared.json, headers=prepared.headers, tally=tally
    )
    assert response.status_code == 200, f"{prepared.url}: {response.status_code} {response.text}"
    return response.json()


async def drive(
    http: httpx.AsyncClient,
    pid: str,
    moves: tuple[Move, ...],
    first: int = 0,
    tally: Tally | None = None,
    progress: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Perform moves[first:], each with its own Idempotency-Key; a spot check the city
    EPB drew (BJ 30) is answered where it comes. Returns the last outcome."""
    outcome: dict[str, Any] = {}
    for index in range(first, len(moves)):
        outcome = await perform(http, await prepare(http, pid, index, moves[index], tally), tally)
        if outcome["step"] == "spot_check":
            spot = await prepare(http, pid, 100 + index, SPOT_CHECK, tally)
            outcome = await perform(http, spot, tally)
        if progress is not None:
            progress()
    return outcome


# --- what the parcel and the registry say -------------------------------------------------


def course(parcel: dict[str, Any]) -> dict[str, Any]:
    """Everything about a parcel's course that must not depend on a crash."""
    return {
        "end": (parcel["stage"], parcel["status"], parcel["listed"], parcel["overdue"]),
        "stages": [v["stage"] for v in parcel["history"]],
        "actions": [(a["step"], a["action"], a["role"], a["decisive"]) for a in parcel["actions"]],
        "decisions": [(d["rule"], d["row"], d["outcome"]) for d in parcel["decisions"]],
        "lists": sorted((m["list_name"], m["left_at"] is not None) for m in parcel["lists"]),
    }


def registry_rows(stack: Stack, pid: str) -> dict[str, Any]:
    """The parcel's registry rows, in a form two parcels of one path can be compared in."""
    with stack.registry() as session:
        parcel = session.exec(
            select(ParcelRow).where(ParcelRow.parcel_id == pid, ParcelRow.current)
        ).first()
        assert parcel is not None, f"{pid}: the registry holds no current row of it"
        decisions = session.exec(select(DecisionRow).where(DecisionRow.parcel_id == pid)).all()
        entries = session.exec(select(ListEntryRow).where(ListEntryRow.parcel_id == pid)).all()
        notices = session.exec(select(NoticeRow).where(NoticeRow.parcel_id == pid)).all()
    return {
        "parcel": (parcel.stage, parcel.status, parcel.listed, parcel.overdue, parcel.waiting_on),
        "decision_ids": sorted(d.decision_id for d in decisions),
        "decisions": sorted((d.rule, d.row, d.outcome) for d in decisions),
        "lists": sorted((e.list_name, e.left_at is not None) for e in entries),
        "notices": sorted(Counter((n.kind, n.step) for n in notices).items()),
    }


def assert_registered_once(stack: Stack, parcel: dict[str, Any]) -> dict[str, Any]:
    """One registry row per decision and list entry of the workflow, none more; the
    parcel's row as the workflow has it. Returns the rows (without run-specific ids)."""
    pid = parcel["parcel_id"]
    rows = registry_rows(stack, pid)
    decided = sorted(d["id"] for d in parcel["decisions"])
    assert rows["decision_ids"] == decided, (
        f"{pid}: decision rows {rows['decision_ids']}, the workflow's {decided}"
    )
    lists = course(parcel)["lists"]
    assert rows["lists"] == lists, f"{pid}: list rows {rows['lists']}, the workflow's {lists}"
    row = (
        parcel["stage"],
        parcel["status"],
        parcel["listed"],
        parcel["overdue"],
        ",".join(parcel["waiting_on"]),
    )
    assert rows["parcel"] == row, f"{pid}: parcel row {rows['parcel']}, the workflow's {row}"
    return {k: v for k, v in rows.items() if k != "decision_ids"}
