"""One route through every waiting step, and what each action needs to pass or fail.

The parcel is `tests.helpers.facts`: a closed coking plant whose right was recovered, so
the reserve agency investigates (R2) and the district government remediates (R4). The
route chooses risk control, finds diffusion, isolates, then switches to remediation with
a soil transport, so one parcel waits at all twelve steps, in this order.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.client import Client

from landflow.contracts import DISTRICT_ROLES, Action, Role, Step
from landflow.registry import DecisionRow, ListEntryRow, NoticeRow, ParcelRow
from landflow.temporal import workflow_id
from tests.helpers import DISTRICT, REPORT, TOKENS, TRANSPORT, auth, facts, start

EVALUATOR = "某评估公司"


@dataclass(frozen=True)
class Move:
    """At `step`, `role` (of DISTRICT, for district roles) takes `action` with `body`."""

    step: Step
    action: Action
    role: Role
    body: dict[str, Any]


ROUTE: tuple[Move, ...] = (
    Move(
        Step.closure_screening,
        Action.closure_screening,
        Role.district_epb,
        {"result": "suspected", "notes": "焦油残留"},
    ),
    Move(Step.investigation, Action.investigation_report, Role.reserve_agency, REPORT),
    Move(Step.filing_city_epb, Action.filing_review, Role.city_epb, {"decision": "accepted"}),
    Move(
        Step.filing_planning_land,
        Action.filing_review,
        Role.planning_land,
        {"decision": "accepted"},
    ),
    Move(
        Step.choose_path,
        Action.choose_path,
        Role.district_government,
        {"path": "risk_control", "reason": "近期不开发"},
    ),
    Move(
        Step.control_measures,
        Action.control_measures,
        Role.district_government,
        {"control_zone": "东区", "signs_posted": True, "notice_published": True},
    ),
    Move(
        Step.monitoring,
        Action.monitoring_result,
        Role.district_government,
        {"diffusion_found": True},
    ),
    Move(Step.isolation, Action.isolation_measures, Role.land_user, {"measures": "防渗隔离墙"}),
    Move(Step.monitoring, Action.choose_path, Role.district_government, {"path": "remediation"}),
    Move(
        Step.remediation_plan,
        Action.remediation_plan,
        Role.district_government,
        {"plan": "热脱附", "contractor": "北京建工环境修复"},
    ),
    Move(Step.works, Action.soil_transport, Role.district_government, TRANSPORT),
    Move(Step.works, Action.works_completed, Role.district_government, {"summary": "完工"}),
    Move(
        Step.evaluation,
        Action.evaluation,
        Role.third_party_evaluator,
        {"met": True, "evaluator": EVALUATOR},
    ),
    Move(Step.release, Action.release, Role.planning_land, {"notes": "准予开发"}),
)

# DOMAIN.md: what each waiting step lets its role do (a copy of the spec, not of the gate).
OPEN: dict[Step, frozenset[Action]] = {
    Step.closure_screening: frozenset({Action.closure_screening}),
    Step.investigation: frozenset({Action.investigation_report}),
    Step.filing_city_epb: frozenset({Action.filing_review}),
    Step.filing_planning_land: frozenset({Action.filing_review}),
    Step.choose_path: frozenset({Action.choose_path}),
    Step.control_measures: frozenset({Action.control_measures, Action.choose_path}),
    Step.monitoring: frozenset({Action.monitoring_result, Action.choose_path}),
    Step.isolation: frozenset({Action.isolation_measures}),
    Step.remediation_plan: frozenset({Action.remediation_plan}),
    Step.works: frozenset({Action.soil_transport, Action.works_completed}),
    Step.evaluation: frozenset({Action.evaluation}),
    Step.release: frozenset({Action.release}),
}
# Who acts on this parcel, once R2 and R4 have named the parties: the first owner of each
# action (filing_review: the city EPB, then the planning bureau), all owners, a valid body.
OWNER = {action: next(m.role for m in ROUTE if m.action == action) for action in Action}
OWNERS = {action: {m.role for m in ROUTE if m.action == action} for action in Action}
VALID_BODY = {action: next(m.body for m in ROUTE if m.action == action) for action in Action}

# A body that fails validation at the right step, and the field the 422 must name.
BAD_BODY: dict[Action, tuple[dict[str, Any], str]] = {
    Action.closure_screening: ({"result": "maybe"}, "result"),
    Action.investigation_report: ({**REPORT, "extent_m2": -1}, "extent_m2"),
    Action.filing_review: ({"decision": "later"}, "decision"),
    Action.choose_path: ({"path": "wait and see"}, "path"),
    Action.control_measures: (
        {"control_zone": "东区", "signs_posted": "perhaps", "notice_published": True},
        "signs_posted",
    ),
    Action.monitoring_result: ({"sampled_on": "2027-01-01"}, "diffusion_found"),
    Action.isolation_measures: ({"measures": ""}, "measures"),
    Action.remediation_plan: ({"plan": "热脱附"}, "contractor"),
    Action.soil_transport: ({**TRANSPORT, "quantity_m3": 0}, "quantity_m3"),
    Action.works_completed: ({"summary": "长" * 10_001}, "summary"),
    Action.evaluation: ({"met": True}, "evaluator"),
    Action.release: ({"notes": "好" * 10_001}, "notes"),
}

NOT_JSON = b"\xff\xfe{not json"


def token_of(role: Role, district: str | None = DISTRICT) -> str:
    """The test token of `role` (of `district`, for district roles)."""
    wanted = district if role in DISTRICT_ROLES else None
    return next(
        t for t, e in TOKENS.items() if e["role"] == role.value and e.get("district") == wanted
    )


def bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token is not None else {}


async def attempt(
    api: httpx.AsyncClient,
    pid: str,
    action: Action | str,
    token: str | None,
    body: dict[str, Any] | bytes,
    **headers: str,
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await api.post(
        f"/parcels/{pid}/actions/{action}",
        content=content,
        headers={"Content-Type": "application/json", **bearer(token), **headers},
    )


async def take(api: httpx.AsyncClient, pid: str, move: Move) -> dict[str, Any]:
    response = await attempt(api, pid, move.action, token_of(move.role), move.body)
    assert response.status_code == 200, f"{move}: {response.text}"
    return response.json()


async def drive(api: httpx.AsyncClient, pid: str, until: int = 0, **overrides: Any) -> int:
    """Start a parcel and take the ROUTE's moves before index `until`; returns `until`."""
    await start(api, facts(pid, **overrides))
    for move in ROUTE[:until]:
        await take(api, pid, move)
    return until


def first_visit(step: Step) -> int:
    return next(i for i, m in enumerate(ROUTE) if m.step == step)


@dataclass(frozen=True)
class Trace:
    """Everything a parcel leaves behind: workflow history and registry rows."""

    events: int
    rows: tuple[str, ...]


async def trace(client: Client, engine: Engine, pid: str) -> Trace:
    history = await client.get_workflow_handle(workflow_id(pid)).fetch_history()
    rows: list[str] = []
    with Session(engine) as session:
        for table in (ParcelRow, DecisionRow, ListEntryRow, NoticeRow):
            found = session.exec(select(table).where(table.parcel_id == pid)).all()
            rows += sorted(f"{table.__tablename__}:{r.model_dump_json()}" for r in found)
    return Trace(events=len(history.events), rows=tuple(rows))


class Witness:
    """Sends a request that must change nothing (a refusal, a retry) and checks that it
    left no trace, answering with `status` (and `error`)."""

    def __init__(self, client: Client, engine: Engine) -> None:
        self.client, self.engine = client, engine

    async def no_trace(
        self, pid: str, request: Awaitable[httpx.Response], status: int, error: str | None = None
    ) -> dict[str, Any]:
        before = await trace(self.client, self.engine, pid)
        response = await request
        assert response.status_code == status, response.text
        answer = response.json()
        assert error is None or answer["error"] == error, answer
        assert await trace(self.client, self.engine, pid) == before, f"{answer} left a trace"
        return answer


async def parcel(api: httpx.AsyncClient, pid: str) -> dict[str, Any]:
    response = await api.get(f"/parcels/{pid}", headers=auth("auditor"))
    assert response.status_code == 200, response.text
    return response.json()
