"""One parcel driven through every step the procedure opens, and what a request leaves.

The parcel is `tests.helpers.facts` with a bound land user: a closed coking plant whose
right was recovered, so the district EPB screens it (R3), the reserve agency
investigates (R2) and the polluter remediates (R4). The ROUTE chooses risk control,
finds diffusion (the land user isolates), switches to remediation with a soil transport
(reported to two district EPBs), is evaluated, removed from the lists and released.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from landflow.messages import workflow_id
from landflow.vocabulary import Action, Step
from registry.tables import DecisionRow, DocumentRow, ListEntryRow, NoticeRow, ParcelRow, TaskRow
from tests.helpers import (
    ACCEPTED,
    CONTRACTOR,
    DIRTY_SAMPLES,
    EVALUATOR,
    LAND_USER,
    MET_RESULTS,
    TARGETS,
    TOKENS,
    TRANSPORT,
    cite,
    facts,
    get,
    start,
)

NOT_JSON = b"{not json"  # valid UTF-8, not JSON: a body problem, reported after 403 and 409


@dataclass(frozen=True)
class Move:
    """At `step`, the holder of `token` takes `action` with `body` (citing a document of
    kind `cites`, uploaded by them); a `drawn` move only if the parcel waits for it."""

    step: Step
    action: Action
    token: str
    body: dict[str, Any]
    cites: str | None = None
    drawn: bool = False


ROUTE: tuple[Move, ...] = (
    Move(Step.closure_screening, Action.closure_screening, "t-depb", {"result": "suspected"}),
    Move(
        Step.investigation,
        Action.investigation_report,
        "t-reserve",
        {"samples": DIRTY_SAMPLES, "extent_m2": 50_000, "degree": "heavy"},
        "investigation_report",
    ),
    Move(Step.filing_review, Action.filing_review, "t-cityepb", ACCEPTED),
    Move(Step.filing_review, Action.filing_review, "t-planning", ACCEPTED),
    Move(
        Step.risk_assessment,
        Action.risk_assessment_report,
        "t-responsible",
        {"acceptable": False, "targets": TARGETS, "recommendation": "risk_control"},
        "risk_assessment_report",
    ),
    Move(Step.risk_assessment_review, Action.risk_assessment_review, "t-planning", ACCEPTED),
    Move(Step.risk_assessment_review, Action.risk_assessment_review, "t-cityepb", ACCEPTED),
    Move(Step.choose_path, Action.choose_path, "t-gov", {"path": "risk_control"}),
    Move(
        Step.control_measures,
        Action.control_measures,
        "t-gov",
        {"control_zone": "焦化厂东区", "signs_posted": True, "notice_published": True},
    ),
    Move(Step.monitoring, Action.monitoring_result, "t-responsible", {"diffusion_found": True}),
    Move(Step.isolation, Action.isolation_measures, "t-landuser", {"measures": "防渗隔离墙"}),
    Move(Step.monitoring, Action.choose_path, "t-gov", {"path": "remediation"}),
    Move(
        Step.remediation_plan,
        Action.remediation_plan,
        "t-responsible",
        {"plan": "热脱附", "contractor": CONTRACTOR, "notice_board": True},
        "remediation_plan",
    ),
    Move(Step.plan_filing, Action.plan_filing_review, "t-depb", {"decision": "acknowledged"}),
    Move(Step.works, Action.soil_transport, "t-responsible", TRANSPORT, "transport_plan"),
    # the destination's EPB acknowledges; the origin's acknowledgement stays open to the end
    Move(Step.transport_acknowledgement, Action.transport_acknowledgement, "t-depb-dest", {}),
    Move(Step.works, Action.secondary_pollution_inspection, "t-depb", {"compliant": True}),
    Move(Step.works, Action.works_completed, "t-responsible", {"summary": "完工"}),
    Move(
        Step.commission_evaluator,
        Action.commission_evaluator,
        "t-responsible",
        {"party": EVALUATOR},
    ),
    Move(
        Step.evaluation,
        Action.evaluation,
        "t-evaluator",
        {"met": True, "results": MET_RESULTS},
        "effect_evaluation_report",
    ),
    Move(Step.spot_check, Action.spot_check, "t-cityepb", {"result": "met"}, drawn=True),
    Move(Step.removal_application, Action.removal_application, "t-landuser", {}),
    Move(Step.removal_review, Action.removal_review, "t-cityepb", ACCEPTED),
    Move(Step.removal_review, Action.removal_review, "t-planning", ACCEPTED),
    Move(Step.release, Action.release, "t-planning", {"notes": "准予开发"}),
)


def route_facts(pid: str, **overrides: Any) -> dict[str, Any]:
    return facts(pid, **{"land_user": LAND_USER, **overrides})


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


def if_match(visit: int) -> dict[str, str]:
    return {"If-Match": f'"{visit}"'}


async def attempt(
    api: httpx.AsyncClient,
    pid: str,
    action: Action | str,
    token: str | None,
    body: dict[str, Any] | bytes,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return await api.post(
        f"/parcels/{pid}/actions/{action}",
        content=content,
        headers={"Content-Type": "application/json", **bearer(token), **(headers or {})},
    )


async def open_visit(api: httpx.AsyncClient, pid: str, move: Move) -> tuple[int | None, int]:
    """The visit of the step on which the parcel offers `move.token` `move.action` (None
    if it does not), and how many actions it has applied."""
    entry = TOKENS[move.token]
    wanted = (move.action, move.step, entry["role"])
    parcel = await get(api, pid)
    for offer in parcel["next_actions"]:
        scope = (offer["district"] or entry.get("district"), offer["party"] or entry.get("party"))
        same = scope == (entry.get("district"), entry.get("party"))
        if (offer["action"], offer["step"], offer["role"]) == wanted and same:
            return int(offer["visit"]), len(parcel["actions"])
    return None, len(parcel["actions"])


async def body_of(api: httpx.AsyncClient, pid: str, move: Move) -> dict[str, Any]:
    if move.cites is None:
        return move.body
    entry = TOKENS[move.token]
    scope = entry.get("district") or entry.get("party")
    return {**move.body, "documents": await cite(api, pid, move.cites, entry["role"], scope)}


async def take(api: httpx.AsyncClient, pid: str, move: Move, visit: int) -> dict[str, Any]:
    answer = await attempt(
        api, pid, move.action, move.token, await body_of(api, pid, move), if_match(visit)
    )
    assert answer.status_code == 200, f"{move}: {answer.text}"
    return answer.json()


async def walk(
    api: httpx.AsyncClient, pid: str, **overrides: Any
) -> AsyncIterator[tuple[Move, int]]:
    """Start the parcel; for each move, yield it (and its visit) while the parcel waits
    for it, then take it, unless the caller took it meanwhile (an action was applied)."""
    await start(api, route_facts(pid, **overrides))
    for move in ROUTE:
        visit, applied = await open_visit(api, pid, move)
        if visit is None and move.drawn:
            continue
        assert visit is not None, f"{pid} does not offer {move}: {await get(api, pid)}"
        yield move, visit
        if (await open_visit(api, pid, move))[1] == applied:
            await take(api, pid, move, visit)


async def drive(api: httpx.AsyncClient, pid: str, step: Step, **overrides: Any) -> int:
    """Start a parcel and take the ROUTE up to the first visit of `step`; its visit."""
    moves = walk(api, pid, **overrides)
    async for move, visit in moves:
        if move.step == step:
            await moves.aclose()
            return visit
    raise AssertionError(f"the route never waits at {step}")


@dataclass(frozen=True)
class Trace:
    """Everything a parcel leaves behind: its history's length and its registry rows."""

    events: int
    rows: tuple[str, ...]


TABLES = (ParcelRow, TaskRow, DecisionRow, ListEntryRow, NoticeRow, DocumentRow)


async def trace(client: Client, engine: Engine, pid: str) -> Trace:
    history = await client.get_workflow_handle(workflow_id(pid)).fetch_history()
    rows: list[str] = []
    with Session(engine) as session:
        for table in TABLES:
            found = session.exec(select(table).where(table.parcel_id == pid)).all()
            rows += sorted(f"{table.__tablename__}:{r.model_dump_json()}" for r in found)
    return Trace(events=len(history.events), rows=tuple(rows))


class Witness:
    """Sends a request that must change nothing (a refusal, a retry) and checks that it
    answered `status` (and `error`) and left no trace."""

    def __init__(self, client: Client, engine: Engine) -> None:
        self.client, self.engine = client, engine

    async def trace(self, pid: str) -> Trace:
        return await trace(self.client, self.engine, pid)

    async def no_trace(
        self, pid: str, request: Awaitable[httpx.Response], status: int, error: str | None = None
    ) -> dict[str, Any]:
        before = await self.trace(pid)
        response = await request
        assert response.status_code == status, response.text
        answer = response.json()
        assert error is None or answer["error"] == error, answer
        assert await self.trace(pid) == before, f"{answer} left a trace"
        return answer
