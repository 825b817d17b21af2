"""Parcels driven through the HTTP API as clerks drive them: the paths, and a client that
retries the way a real one must (same Idempotency-Key, same body, after a 503 or 429).

Shared by the benchmarks and tests/e2e/scale. Every path starts with `POST /parcels` and
ends released; documents a step must cite are uploaded first and cited by id, and a retry
re-sends the same citations (a new upload would make it another body, which the key
refuses).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from bench.bare import BareShape
from bench.fixtures import (
    ACCEPTED,
    CLEAN_SAMPLES,
    DIRTY_SAMPLES,
    EVALUATOR,
    MET_RESULTS,
    TARGETS,
    auth,
    clean_facts,
    facts,
    pdf,
)

RETRYABLE = (429, 503)


@dataclass(frozen=True)
class Step:
    action: str
    body: dict[str, Any]
    role: str
    scope: str | None = None
    cite: str | None = None  # a document kind to upload and cite in `documents`
    optional: bool = False  # only when the parcel waits on this step (a drawn spot-check)


@dataclass(frozen=True)
class Path:
    name: str
    facts: Callable[[str], dict[str, Any]]
    steps: tuple[Step, ...]
    lists: frozenset[str] = frozenset()  # list entries the parcel makes (each left again)

    @property
    def calls(self) -> int:
        """HTTP calls of the path: registration, uploads, actions (a spot-check not counted)."""
        required = [s for s in self.steps if not s.optional]
        return 1 + len(required) + sum(1 for s in required if s.cite)


def operating_site(pid: str) -> dict[str, Any]:
    """An industrial site still operating: investigation needed (R1), no screening (R3)."""
    return facts(pid, enterprise_closed=False, industry="other", polluter=None)


def polluted_site(pid: str) -> dict[str, Any]:
    return facts(pid, enterprise_closed=False, industry="other")


REPORT = {"extent_m2": 50_000, "degree": "none"}
CLEAN_REPORT = Step(
    "investigation_report",
    {**REPORT, "samples": CLEAN_SAMPLES},
    "reserve_agency",
    cite="investigation_report",
)
JOINT_FILING = (
    Step("filing_review", ACCEPTED, "city_epb"),
    Step("filing_review", ACCEPTED, "planning_land"),
)
RELEASE = Step("release", {"notes": "按规划用途放行"}, "planning_land")

# The lifecycle benchmark's path: register, investigation report (one upload), the joint
# filing review, release: 6 HTTP calls.
INVESTIGATION = Path("investigation", operating_site, (CLEAN_REPORT, *JOINT_FILING, RELEASE))
RELEASE_ONLY = Path("release", clean_facts, (RELEASE,))
SCREENING = Path(
    "screening",
    facts,  # a closed coking plant: screened suspected, then found clean
    (
        Step("closure_screening", {"result": "suspected", "notes": "焦油残留"}, "district_epb"),
        CLEAN_REPORT,
        *JOINT_FILING,
        RELEASE,
    ),
    lists=frozenset({"suspected"}),
)
RISK_CONTROL = Path(
    "risk_control",
    polluted_site,
    (
        Step(
            "investigation_report",
            {**REPORT, "degree": "heavy", "samples": DIRTY_SAMPLES},
            "reserve_agency",
            cite="investigation_report",
        ),
        *JOINT_FILING,
        Step(
            "risk_assessment_report",
            {"acceptable": False, "targets": TARGETS, "recommendation": "risk_control"},
            "responsible_party",
            cite="risk_assessment_report",
        ),
        Step("risk_assessment_review", ACCEPTED, "city_epb"),
        Step("risk_assessment_review", ACCEPTED, "planning_land"),
        Step("choose_path", {"path": "risk_control"}, "district_government"),
        Step(
            "control_measures",
            {"control_zone": "焦化厂东区", "signs_posted": True, "notice_published": True},
            "district_government",
        ),
        Step("monitoring_result", {"diffusion_found": False}, "responsible_party"),
        Step("risk_control_completed", {"summary": "目标达到"}, "responsible_party"),
        Step("commission_evaluator", {"party": EVALUATOR}, "responsible_party"),
        Step(
            "evaluation",
            {"met": True, "results": MET_RESULTS},
            "third_party_evaluator",
            cite="effect_evaluation_report",
        ),
        Step("spot_check", {"result": "met"}, "city_epb", optional=True),
        Step("removal_application", {}, "responsible_party"),
        Step("removal_review", ACCEPTED, "city_epb"),
        Step("removal_review", ACCEPTED, "planning_land"),
        RELEASE,
    ),
    lists=frozenset({"contaminated", "negative"}),
)
# The scale-out mix: one parcel in six goes the long way through the lists.
MIX = (RELEASE_ONLY, INVESTIGATION, SCREENING, INVESTIGATION, SCREENING, RISK_CONTROL)


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


class DriveError(RuntimeError):
    pass


@dataclass
class Drive:
    """One parcel's trip: what each call answered and how long it took."""

    pid: str
    path: Path
    calls: list[tuple[str, float]] = field(default_factory=list)  # (what, seconds)
    retries: int = 0
    last: dict[str, Any] = field(default_factory=dict)

    def seconds(self, what: str) -> list[float]:
        return [s for name, s in self.calls if name == what]


class Clerk:
    """HTTP calls with the retries a real client makes; `patience` bounds each call."""

    def __init__(self, http: httpx.AsyncClient, patience: float = 180) -> None:
        self.http, self.patience = http, patience

    async def _send(self, drive: Drive, what: str, send: Callable[[], Any]) -> httpx.Response:
        deadline = time.monotonic() + self.patience
        while True:
            started = time.perf_counter()
            try:
                response: httpx.Response = await send()
            except httpx.TransportError as exc:
                if time.monotonic() > deadline:
                    raise DriveError(f"{drive.pid} {what}: {exc!r}") from exc
                drive.retries += 1
                await asyncio.sleep(1)
                continue
            if response.status_code not in RETRYABLE:
                drive.calls.append((what, time.perf_counter() - started))
                return response
            if time.monotonic() > deadline:
                raise DriveError(
                    f"{drive.pid} {what}: still {response.status_code} {response.text}"
                )
            drive.retries += 1
            await asyncio.sleep(float(response.headers.get("retry-after", 1)))

    async def register(self, drive: Drive, body: dict[str, Any]) -> dict[str, Any]:
        """POST /parcels; after a retry or a slow worker, wait until the first step is open."""
        response = await self._send(
            drive,
            "register",
            lambda: self.http.post("/parcels", json=body, headers=auth("reserve_agency")),
        )
        if response.status_code == 201 and response.json()["stage"] != "intake":
            drive.last = response.json()
            return drive.last
        if response.status_code not in (201, 409):
            raise DriveError(f"{drive.pid} register: {response.status_code} {response.text}")
        deadline = time.monotonic() + self.patience
        while time.monotonic() < deadline:  # started, not yet (or not seen) at its first step
            parcel = await self.http.get(f"/parcels/{drive.pid}", headers=auth("auditor"))
            if parcel.status_code == 200 and parcel.json()["stage"] != "intake":
                drive.last = parcel.json()
                return drive.last
            drive.retries += 1
            await asyncio.sleep(0.5)
        raise DriveError(f"{drive.pid} never reached its first step")

    async def upload(self, drive: Drive, kind: str, role: str, scope: str | None) -> list[Any]:
        content = pdf(f"{kind} {drive.pid} {uuid.uuid4()}")

        def send() -> Any:
            return self.http.post(
                f"/parcels/{drive.pid}/documents",
                files={"file": ("report.pdf", content, "application/pdf")},
                data={"kind": kind},
                headers=auth(role, scope),
            )

        response = await self._send(drive, "upload", send)
        if response.status_code not in (200, 201):
            raise DriveError(f"{drive.pid} upload {kind}: {response.status_code} {response.text}")
        return [{"document_id": response.json()["document_id"], "kind": kind}]

    async def act(self, drive: Drive, step: Step, key: str) -> dict[str, Any]:
        body = dict(step.body)
        if step.cite:
            body["documents"] = await self.upload(drive, step.cite, step.role, step.scope)
        headers = {**auth(step.role, step.scope), "Idempotency-Key": key}
        url = f"/parcels/{drive.pid}/actions/{step.action}"
        response = await self._send(
            drive, step.action, lambda: self.http.post(url, json=body, headers=headers)
        )
        if response.status_code != 200:
            raise DriveError(
                f"{drive.pid} {step.action}: {response.status_code} {response.text[:500]}"
            )
        drive.last = response.json()
        return drive.last

    async def drive(self, pid: str, path: Path) -> Drive:
        """Register the parcel and take it down its path to release."""
        drive = Drive(pid, path)
        await self.register(drive, path.facts(pid))
        for index, step in enumerate(path.steps):
            if step.optional and drive.last.get("step") != step.action:
                continue
            await self.act(drive, step, f"{pid}-{index}")
        if drive.last.get("status") != "released":
            raise DriveError(f"{pid} ({path.name}) ended at {drive.last}")
        return drive


async def in_parallel(count: int, concurrency: int, job: Callable[[int], Any]) -> float:
    """Run `job(i)` for i < count with at most `concurrency` at once; the wall time."""
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await job(index)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    return time.perf_counter() - started


def api_client(url: str, concurrency: int, timeout: float = 120) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout)


def shape_of(history: WorkflowHistory) -> BareShape:
    """Activities (and local activities) scheduled before the first action update, then
    between action updates, and the timers started and search attributes upserted in
    each: the shape of the bare baseline (bench/bare.py). BENCH_BARE_UPSERTS=0 leaves the
    upserts out (the baseline before 2026-12-07, for comparison)."""
    segments, local, timers, upserts = [0], [0], [0], [0]
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if accepted.input.name != "started":
                for each in (segments, local, timers, upserts):
                    each.append(0)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            segments[-1] += 1
        elif event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            timers[-1] += 1
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            upserts[-1] += 1
        elif (
            event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and event.marker_recorded_event_attributes.marker_name == "core_local_activity"
        ):
            local[-1] += 1
    if os.environ.get("BENCH_BARE_UPSERTS", "1") == "0":
        upserts = []
    return BareShape(
        segments=segments,
        local=local if any(local) else [],
        timers=timers if any(timers) else [],
        upserts=upserts if any(upserts) else [],
    )


def history_bytes(history: WorkflowHistory) -> int:
    return sum(event.ByteSize() for event in history.events)
