"""Who may act where: every token, at every step the procedure opens, on one parcel.

One parcel walks the ROUTE. At each step, before the owner moves it on, tokens of every
role (own and other district, own and other party) send the actions of that step, the
owners of that step send every other action, and the owners of every action send it;
all with a body that is not JSON, so an authorised caller at an open step gets 422 (the
body is checked last) and nothing is ever applied. Then the owner takes the step with
`If-Match` (200). After the release the same is tried on the closed parcel. The
expected answer comes from a copy of DOMAIN.md's table below, not from the gate.
Forged parties and forged actors sent straight to Temporal are refused the same way.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from landflow import signing
from landflow.messages import STATE_QUERY, ActionOutcome, ActionRequest, Actor, workflow_id
from landflow.settings import Settings
from landflow.vocabulary import DISTRICT_ROLES, Action, Role, Step
from tests.e2e.security.conftest import Park
from tests.e2e.security.drive import (
    NOT_JSON,
    ROUTE,
    Move,
    Witness,
    attempt,
    body_of,
    drive,
    if_match,
    walk,
)
from tests.helpers import ACCEPTED, OTHER_COMPANY, RETURNED, TOKENS, auth

# --- DOMAIN.md's table, copied: who owns each action, who that is on the ROUTE's parcel --

WHO: dict[str, tuple[str, ...]] = {
    "district_epb": ("t-depb",),
    "district_government": ("t-gov",),
    "city_epb": ("t-cityepb",),
    "planning_land": ("t-planning",),
    "investigator": ("t-reserve",),  # R2: the right was recovered (BJ 17)
    "responsible": ("t-responsible",),  # R4: the polluter (Law 45)
    "land_user": ("t-landuser",),
    "evaluator": ("t-evaluator",),  # commissioned (Law 65)
    "transport_epbs": ("t-depb", "t-depb-dest"),  # origin and destination (BJ 29; Law 41)
}
# An owner decided on the way is known once this action was taken so many times.
LEARNT: dict[str, tuple[Action, int]] = {
    "investigator": (Action.closure_screening, 1),
    "responsible": (Action.filing_review, 2),
    "transport_epbs": (Action.soil_transport, 1),
    "evaluator": (Action.commission_evaluator, 1),
}
# Before it is learnt, who could still be named that owner (a possible role, of the
# parcel's district, and for a company the one bound to the parcel): early, not out of role.
POSSIBLE: dict[str, tuple[str, ...]] = {
    "investigator": ("t-reserve", "t-gov", "t-landuser"),
    "responsible": ("t-gov", "t-landuser"),  # the polluter is not bound before R4
    "transport_epbs": ("t-depb",),  # the origin is this parcel's district
    "evaluator": (),  # not bound before it is commissioned
}
BUREAUS = ("city_epb", "planning_land")
OWNED_BY: dict[Action, tuple[str, ...]] = {
    Action.closure_screening: ("district_epb",),
    Action.investigation_report: ("investigator",),
    Action.filing_review: BUREAUS,
    Action.responsibility_determination: BUREAUS,
    Action.risk_assessment_report: ("responsible",),
    Action.risk_assessment_review: BUREAUS,
    Action.choose_path: ("district_government",),
    Action.control_measures: ("district_government",),
    Action.monitoring_result: ("responsible",),
    Action.isolation_measures: ("land_user",),
    Action.risk_control_completed: ("responsible",),
    Action.remediation_plan: ("responsible",),
    Action.plan_filing_review: ("district_epb",),
    Action.soil_transport: ("responsible",),
    Action.transport_acknowledgement: ("transport_epbs",),
    Action.secondary_pollution_inspection: ("district_epb",),
    Action.works_completed: ("responsible",),
    Action.commission_evaluator: ("responsible",),
    Action.evaluation: ("evaluator",),
    Action.spot_check: ("city_epb",),
    Action.removal_application: ("responsible", "land_user"),
    Action.removal_review: BUREAUS,
    Action.release: ("planning_land",),
}
# What each step lets whom do (a revised plan in works only after a failed evaluation).
OPENS: dict[Step, tuple[tuple[Action, str], ...]] = {
    Step.closure_screening: ((Action.closure_screening, "district_epb"),),
    Step.investigation: ((Action.investigation_report, "investigator"),),
    Step.filing_review: tuple((Action.filing_review, b) for b in BUREAUS),
    Step.risk_assessment: ((Action.risk_assessment_report, "responsible"),),
    Step.risk_assessment_review: tuple((Action.risk_assessment_review, b) for b in BUREAUS),
    Step.choose_path: ((Action.choose_path, "district_government"),),
    Step.control_measures: ((Action.control_measures, "district_government"),),
    Step.monitoring: (
        (Action.monitoring_result, "responsible"),
        (Action.risk_control_completed, "responsible"),
        (Action.choose_path, "district_government"),
    ),
    Step.isolation: ((Action.isolation_measures, "land_user"),),
    Step.remediation_plan: ((Action.remediation_plan, "responsible"),),
    Step.plan_filing: ((Action.plan_filing_review, "district_epb"),),
    Step.works: (
        (Action.works_completed, "responsible"),
        (Action.soil_transport, "responsible"),
        (Action.secondary_pollution_inspection, "district_epb"),
    ),
    Step.commission_evaluator: ((Action.commission_evaluator, "responsible"),),
    Step.evaluation: ((Action.evaluation, "evaluator"),),
    Step.spot_check: ((Action.spot_check, "city_epb"),),
    Step.removal_application: tuple(
        (Action.removal_application, o) for o in ("responsible", "land_user")
    ),
    Step.removal_review: tuple((Action.removal_review, b) for b in BUREAUS),
    Step.release: ((Action.release, "planning_land"),),
}
JOINT = frozenset({Action.filing_review, Action.risk_assessment_review, Action.removal_review})
SIDE = Step.transport_acknowledgement  # never holds the procedure: works stays open
NEVER_ACT = ("t-public", "t-auditor", "t-ops")
# The issue's list: every step the procedure opens on the way must be checked.
REQUIRED_STEPS = {
    Step.closure_screening,
    Step.investigation,
    Step.filing_review,
    Step.risk_assessment,
    Step.risk_assessment_review,
    Step.choose_path,
    Step.control_measures,
    Step.monitoring,
    Step.remediation_plan,
    Step.plan_filing,
    Step.works,
    Step.transport_acknowledgement,
    Step.commission_evaluator,
    Step.evaluation,
    Step.removal_application,
    Step.removal_review,
    Step.release,
}
ANSWER = {"open": (422, "InvalidBody"), "WrongStage": (409,), "ParcelClosed": (409,)}


@dataclass
class Point:
    """The parcel before a move of the ROUTE (or closed, after the last)."""

    label: str
    taken: list[Move]
    step: Step | None = None  # the step holding the procedure
    open: set[tuple[Action, str]] = field(default_factory=set)  # (action, token)
    closed: bool = False

    def owners(self, action: Action) -> set[str]:
        return {token for owner in OWNED_BY[action] if self.learnt(owner) for token in WHO[owner]}

    def learnt(self, owner: str) -> bool:
        if owner not in LEARNT:
            return True
        taken, times = LEARNT[owner]
        return [m.action for m in self.taken].count(taken) >= times

    def possible(self, action: Action) -> set[str]:
        """Who could yet be named an owner of the action that is not learnt yet."""
        return {
            token
            for owner in OWNED_BY[action]
            if not self.learnt(owner)
            for token in POSSIBLE[owner]
        }

    def expected(self, token: str, action: Action) -> str:
        """The refusal's `error` (or "open") DOMAIN.md and the check order give."""
        owners = self.owners(action)
        if token not in owners and token in self.possible(action):
            return "ParcelClosed" if self.closed else "WrongStage"
        if token in owners:
            if self.closed:
                return "ParcelClosed"
            return "open" if (action, token) in self.open else "WrongStage"
        role = TOKENS[token]["role"]
        if not any(TOKENS[o]["role"] == role for o in owners):
            return "WrongRole"
        return "WrongDistrict" if Role(role) in DISTRICT_ROLES else "WrongParty"


def point_before(index: int) -> Point:
    """What is open before ROUTE[index]: its step, minus the opinions this visit already
    has (joint reviews), plus the transport acknowledgements still owed."""
    taken = list(ROUTE[:index])
    point = Point(f"#{index} {ROUTE[index].step.value}: {ROUTE[index].action.value}", taken)

    def blocking(move: Move) -> Step:
        return Step.works if move.step == SIDE else move.step

    step = point.step = blocking(ROUTE[index])
    this_visit = []
    for move in reversed(taken):
        if blocking(move) != step:
            break
        this_visit.append((move.action, move.token))
    for action, owner in OPENS[step]:
        for token in WHO[owner]:
            if (action, token) not in this_visit or action not in JOINT:
                point.open.add((action, token))
    if Action.soil_transport in [m.action for m in taken]:
        acknowledged = {m.token for m in taken if m.action == Action.transport_acknowledgement}
        for token in set(WHO["transport_epbs"]) - acknowledged:
            point.open.add((Action.transport_acknowledgement, token))
    return point


def tries(point: Point, previous: Point | None) -> list[tuple[str, Action]]:
    """Every token on the open actions; the open actions' owners on every action; every
    action by its owners. Later in the same step visit, only what is new: every token on
    the open actions, and the newly open owners on every action."""
    again = previous is not None and previous.step == point.step
    before = {t for _, t in previous.open} if again and previous else set()
    pairs: dict[tuple[str, Action], None] = {}
    for action in {a for a, _ in point.open}:
        pairs.update(dict.fromkeys((t, action) for t in TOKENS))
    for token in {t for _, t in point.open} - before:
        pairs.update(dict.fromkeys((token, a) for a in Action))
    if not again:
        for action, owners in OWNED_BY.items():
            pairs.update(dict.fromkeys((t, action) for o in owners for t in WHO[o]))
    return list(pairs)


@dataclass(frozen=True)
class Seen:
    point: str
    token: str
    action: Action
    expected: str
    status: int
    error: str

    def right(self) -> bool:
        if self.status == 500:
            return False
        if self.expected == "open":
            return (self.status, self.error) == (422, "InvalidBody")
        status = 409 if self.expected in ("WrongStage", "ParcelClosed", "StaleVisit") else 403
        return (self.status, self.error) == (status, self.expected)

    def __str__(self) -> str:
        return (
            f"{self.point}: {self.token} {self.action.value} expected {self.expected}, "
            f"got {self.status} {self.error}"
        )


@dataclass
class Sweep:
    seen: list[Seen] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    events: list[int] = field(default_factory=list)  # history length before each point
    traces: list[str] = field(default_factory=list)  # points whose refusals left a trace
    state: dict[str, Any] = field(default_factory=dict)  # the parcel at the end

    def wrong(self, keep: object = lambda s: True) -> list[str]:
        return [str(s) for s in self.seen if keep(s) and not s.right()]  # type: ignore[operator]


SWEEP_AT_ONCE = 8


async def sweep_point(
    api: httpx.AsyncClient, pid: str, point: Point, previous: Point | None, visit: int | None
) -> list[Seen]:
    # A few tries at once (within the parcel's queue of the API's pacing, so no 429):
    # each is refused and changes nothing, so their order does not matter.
    lanes = asyncio.Semaphore(SWEEP_AT_ONCE)

    async def one(token: str, action: Action) -> Seen:
        async with lanes:
            answer = await attempt(api, pid, action, token, NOT_JSON)
        error = answer.json().get("error", "") if answer.status_code != 500 else ""
        expected = point.expected(token, action)
        return Seen(point.label, token, action, expected, answer.status_code, error)

    seen = list(await asyncio.gather(*(one(t, a) for t, a in tries(point, previous))))
    if visit is not None:  # the owner answering another visit of the step
        move = ROUTE[len(point.taken)]
        answer = await attempt(api, pid, move.action, move.token, NOT_JSON, if_match(visit + 1000))
        seen.append(
            Seen(
                point.label,
                move.token,
                move.action,
                "StaleVisit",
                answer.status_code,
                answer.json().get("error", ""),
            )
        )
    return seen


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sweep(api: httpx.AsyncClient, witness: Witness) -> Sweep:
    """The whole matrix, walked once; the tests below read it."""
    pid = f"M{uuid.uuid4().hex[:10]}"
    found, index = Sweep(), 0
    async for move, visit in walk(api, pid):  # walk() takes the move when resumed
        while ROUTE[index] != move:  # a drawn move the parcel skipped
            index += 1
        await check(api, witness, pid, found, point_before(index), visit)
        index += 1
    await check(api, witness, pid, found, Point("released", list(ROUTE), closed=True), None)
    found.state = await witness.client.get_workflow_handle(workflow_id(pid)).query(
        STATE_QUERY, result_type=dict
    )
    return found


async def check(
    api: httpx.AsyncClient,
    witness: Witness,
    pid: str,
    found: Sweep,
    point: Point,
    visit: int | None,
) -> None:
    before = await witness.trace(pid)
    previous = found.points[-1] if found.points else None
    found.points.append(point)
    found.events.append(before.events)
    found.seen += await sweep_point(api, pid, point, previous, visit)
    if await witness.trace(pid) != before:
        found.traces.append(point.label)


def test_the_route_opens_every_step_of_the_issue(sweep: Sweep) -> None:
    steps = {m.step for p in sweep.points for m in p.taken}
    assert steps >= REQUIRED_STEPS, REQUIRED_STEPS - steps
    assert len(sweep.seen) > 1500, len(sweep.seen)


def test_only_the_owners_may_take_a_steps_actions(sweep: Sweep) -> None:
    """Every role's token, own and other district and party, on the actions open at
    each step: the owners get as far as the body (422 here, 200 with a good one), the
    others 403 WrongRole / WrongDistrict / WrongParty."""
    open_now = {(p.label, a) for p in sweep.points for a, _ in p.open}
    wrong = sweep.wrong(lambda s: (s.point, s.action) in open_now)
    assert not wrong, "\n".join(wrong)


def test_the_owners_of_a_step_may_take_no_other_action(sweep: Sweep) -> None:
    """The role a step waits on is no owner of the other actions: 403, not 409."""
    owners_now = {(p.label, t) for p in sweep.points for _, t in p.open}
    wrong = sweep.wrong(lambda s: (s.point, s.token) in owners_now and s.expected == "WrongRole")
    assert not wrong, f"{len(wrong)} wrong:\n" + "\n".join(wrong)


def test_owners_at_a_step_not_theirs_are_told_409(sweep: Sweep) -> None:
    wrong = sweep.wrong(lambda s: s.expected in ("WrongStage", "StaleVisit", "ParcelClosed"))
    assert not wrong, "\n".join(wrong)
    stale = [s for s in sweep.seen if s.expected == "StaleVisit"]
    assert len(stale) == len(sweep.points) - 1


def test_public_auditor_and_ops_never_act(sweep: Sweep) -> None:
    theirs = [s for s in sweep.seen if s.token in NEVER_ACT]
    assert theirs and all((s.status, s.error) == (403, "WrongRole") for s in theirs), [
        str(s) for s in theirs if (s.status, s.error) != (403, "WrongRole")
    ]


def test_everything_else_matches_the_table(sweep: Sweep) -> None:
    wrong = sweep.wrong()
    assert not wrong, f"{len(wrong)} of {len(sweep.seen)} wrong:\n" + "\n".join(wrong)


def test_refusals_leave_no_trace_and_each_owner_moves_the_parcel(sweep: Sweep) -> None:
    assert not sweep.traces, f"refusals left a trace at {sweep.traces}"
    assert sweep.events == sorted(set(sweep.events)), sweep.events  # each move grew it
    moves = len(sweep.points) - 1
    assert (len(sweep.state["actions"]), sweep.state["status"]) == (moves, "released")


# --- forged parties ---------------------------------------------------------------------

FORGERS = {
    "land_user": "t-landuser-other",
    "responsible_party": "t-responsible-other",
    "third_party_evaluator": "t-evaluator-other",
}


async def test_another_companys_token_is_wrong_party_and_changes_nothing(
    api: httpx.AsyncClient, witness: Witness, pid: str
) -> None:
    """With a valid body citing the owner's own documents, another company's token of the
    same role is refused at every step its role owns on this parcel."""
    tried = set()
    async for move, visit in walk(api, pid):
        role = TOKENS[move.token]["role"]
        if role not in FORGERS:
            continue
        forger = FORGERS[role]
        body = await body_of(api, pid, move)
        for headers in ({}, if_match(visit)):
            request = attempt(api, pid, move.action, forger, body, headers)
            answer = await witness.no_trace(pid, request, 403, "WrongParty")
            assert OTHER_COMPANY["id"] in answer["detail"], answer
        tried.add((role, move.action))
    assert {r for r, _ in tried} == set(FORGERS), tried
    assert len(tried) >= 8, tried


# --- forged actors, straight to Temporal ------------------------------------------------


def signed(settings: Settings, wid: str, action: str, request: ActionRequest) -> dict[str, object]:
    ring = signing.KeyRing.from_secrets(settings.actor_key, settings.actor_keys_previous)
    return signing.sign(ring, wid, action, request).model_dump(mode="json")


async def test_a_forged_actor_sent_to_temporal_is_refused_and_leaves_nothing(
    api: httpx.AsyncClient,
    witness: Witness,
    temporal: WorkflowEnvironment,
    settings: Settings,
    parked: Park,
    pid: str,
) -> None:
    await drive(api, pid, Step.filing_review)
    other, _ = await parked(Step.filing_review)
    wid = workflow_id(pid)
    handle = temporal.client.get_workflow_handle(wid)
    now = datetime.now(UTC)
    forger = Actor(role=Role.city_epb, subject="forged")
    accept = ActionRequest(actor=forger, body=ACCEPTED, issued_at=now)
    unsigned = {
        "actor": {"role": "city_epb", "subject": "forged"},
        "body": {"decision": "accepted"},
        "issued_at": now.isoformat(),
    }
    forgeries = {
        "unsigned": unsigned,
        "a wrong signature": {**unsigned, "signature": "0" * 64},
        "signed for another body": {
            **signed(settings, wid, "filing_review", accept.model_copy(update={"body": RETURNED})),
            "body": ACCEPTED,
        },
        "signed for another parcel": signed(settings, workflow_id(other), "filing_review", accept),
        "signed for another action": signed(settings, wid, "removal_review", accept),
        "signed for another actor": {
            **signed(
                settings,
                wid,
                "filing_review",
                accept.model_copy(update={"actor": Actor(role=Role.auditor, subject="forged")}),
            ),
            "actor": forger.model_dump(mode="json"),
        },
        "signed six minutes ago": signed(
            settings,
            wid,
            "filing_review",
            accept.model_copy(update={"issued_at": now - timedelta(minutes=6)}),
        ),
    }
    before = await witness.trace(pid)
    for label, forged in forgeries.items():
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update("filing_review", forged)
        cause = refused.value.cause
        assert isinstance(cause, ApplicationError) and cause.type == "BadSignature", (label, cause)
    assert await witness.trace(pid) == before
    trail = await api.get(f"/parcels/{pid}/trail", headers=auth("auditor"))
    assert trail.status_code == 200, trail.text
    assert [a for a in trail.json()["actions"] if a["subject"] == "forged"] == []
    # the same request, signed now with the API's key, is accepted: the refusals above
    # were about the signature, and the trail shows actions sent this way
    genuine = ActionRequest(
        actor=Actor(role=Role.city_epb, subject="signed-by-test"), body=ACCEPTED, issued_at=now
    )
    outcome = await handle.execute_update(
        "filing_review", signed(settings, wid, "filing_review", genuine), result_type=ActionOutcome
    )
    assert (outcome.action, outcome.waiting_on) == (Action.filing_review, [Role.planning_land])
    trail = (await api.get(f"/parcels/{pid}/trail", headers=auth("auditor"))).json()
    subjects = [a["subject"] for a in trail["actions"]]
    assert "signed-by-test" in subjects and "forged" not in subjects
