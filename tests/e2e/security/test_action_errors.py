"""Refusals in the checked order, each leaving no trace; retries and races applied once.

The order is 403 (role, district, party), then 409 (closed, stage, visit, key), then the
body (413, 422). At every step of the ROUTE its owner's bad body is a 422 naming the
field and an oversized one a 413, while the same bodies from the public token are 403
and with a stale visit 409. After every refusal the workflow history and the parcel's
registry rows are unchanged.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from landflow.messages import PROJECT, workflow_id
from landflow.settings import Settings
from landflow.vocabulary import Action, Step
from service.worker import build_worker
from tests.e2e.faults.slow_worker import SlowActivities
from tests.e2e.security.conftest import Park, Server, running_server
from tests.e2e.security.drive import (
    NOT_JSON,
    ROUTE,
    Move,
    Witness,
    attempt,
    bearer,
    body_of,
    drive,
    if_match,
    open_visit,
    route_facts,
    take,
    walk,
)
from tests.helpers import (
    ACCEPTED,
    CLEAN_SAMPLES,
    CONTRACTOR,
    TOKENS,
    TRANSPORT,
    auth,
    clean_facts,
    get,
    start,
)

# A body that fails validation at the step where its action is open, and the field the
# 422 must name.
BAD_BODY: dict[Action, tuple[dict[str, Any], str]] = {
    Action.closure_screening: ({"result": "maybe"}, "result"),
    Action.investigation_report: (
        {"samples": [{"item": "铅", "value_mg_kg": 1}], "extent_m2": -1, "degree": "heavy"},
        "extent_m2",
    ),
    Action.filing_review: ({"decision": "later"}, "decision"),
    Action.risk_assessment_report: ({"acceptable": "perhaps"}, "acceptable"),
    Action.risk_assessment_review: ({"decision": 1}, "decision"),
    Action.choose_path: ({"path": "wait and see"}, "path"),
    Action.control_measures: (
        {"control_zone": "东区", "signs_posted": "perhaps", "notice_published": True},
        "signs_posted",
    ),
    Action.monitoring_result: ({"sampled_on": "2027-01-01"}, "diffusion_found"),
    Action.isolation_measures: ({"measures": ""}, "measures"),
    Action.remediation_plan: ({"plan": "热脱附", "notice_board": True}, "contractor"),
    Action.plan_filing_review: ({"decision": "filed"}, "decision"),
    Action.soil_transport: ({**TRANSPORT, "quantity_m3": 0}, "quantity_m3"),
    Action.transport_acknowledgement: ({"notes": "好" * 10_001}, "notes"),
    Action.secondary_pollution_inspection: ({"findings": "扬尘"}, "compliant"),
    Action.works_completed: ({"summary": "长" * 10_001}, "summary"),
    Action.commission_evaluator: ({"party": CONTRACTOR}, "party.id"),  # Law 65 另行委托
    Action.evaluation: ({"met": "perhaps"}, "met"),
    Action.spot_check: ({"result": "maybe"}, "result"),
    Action.removal_application: ({"notes": 5}, "notes"),
    Action.removal_review: ({"decision": "later"}, "decision"),
    Action.release: ({"notes": "好" * 10_001}, "notes"),
}
OVERSIZED = json.dumps({"notes": "x" * 70_000}).encode()  # over every action's limit
GARBAGE = (NOT_JSON, b"[1, 2]", b'"text"', b'{"unexpected": true}')


def fields(answer: dict[str, Any]) -> list[str]:
    return [f["field"] for f in answer.get("fields", [])]


async def test_bodies_are_judged_last_at_every_step(
    api: httpx.AsyncClient, witness: Witness, pid: str
) -> None:
    checked = set()
    async for move, visit in walk(api, pid):
        bad, field = BAD_BODY[move.action]

        async def refused(body: Any, token: str, status: int, error: str, **headers: str) -> Any:
            request = attempt(api, pid, move.action, token, body, headers)  # noqa: B023
            return await witness.no_trace(pid, request, status, error)

        answer = await refused(bad, move.token, 422, "InvalidBody", **if_match(visit))
        assert field in fields(answer), (move, answer)
        for garbage in GARBAGE:
            answer = await refused(garbage, move.token, 422, "InvalidBody")
            assert answer["fields"] and all(f["reason"] for f in answer["fields"]), answer
        assert "unexpected" in fields(answer), answer
        await refused(OVERSIZED, move.token, 413, "TooLarge")
        # the same bodies out of role are 403, and at another visit 409
        for body in (bad, OVERSIZED, NOT_JSON):
            await refused(body, "t-public", 403, "WrongRole")
            await refused(body, move.token, 409, "StaleVisit", **if_match(visit + 1000))
        checked.add(move.action)
    assert set(BAD_BODY) - checked <= {Action.spot_check}, set(BAD_BODY) - checked


async def test_a_body_visit_must_agree_with_if_match(
    api: httpx.AsyncClient, witness: Witness, parked: Park
):
    pid, visit = await parked(Step.choose_path)
    body = {"path": "remediation", "visit": visit + 1}
    request = attempt(api, pid, Action.choose_path, "t-gov", body, if_match(visit))
    answer = await witness.no_trace(pid, request, 422, "InvalidBody")
    assert fields(answer) == ["visit"], answer
    request = attempt(api, pid, Action.choose_path, "t-gov", {**body, "visit": "one"})
    assert fields(await witness.no_trace(pid, request, 422, "InvalidBody")) == ["visit"]
    # a visit in the body alone is the same as If-Match
    request = attempt(api, pid, Action.choose_path, "t-gov", body)
    await witness.no_trace(pid, request, 409, "StaleVisit")


async def test_no_or_an_unknown_token_is_401(
    api: httpx.AsyncClient, witness: Witness, parked: Park
):
    pid, _ = await parked(Step.release)
    for headers in (
        {},
        bearer("t-unknown"),
        bearer("t-planning" + "x"),
        bearer(""),
        {"Authorization": "Basic t-planning"},
    ):
        request = api.post(f"/parcels/{pid}/actions/release", json={}, headers=headers)
        answer = await witness.no_trace(pid, request, 401, "Unauthenticated")
        assert set(answer) <= {"error", "detail", "fields"}
    no_token = await api.post(f"/parcels/{pid}/actions/release", json={})
    assert no_token.headers["WWW-Authenticate"] == "Bearer"


async def test_an_unknown_parcel_is_404_and_a_second_start_409(
    api: httpx.AsyncClient, witness: Witness, parked: Park
):
    pid, _ = await parked(Step.works)
    missing = await attempt(api, f"{pid}-none", Action.release, "t-planning", {})
    assert (missing.status_code, missing.json()["error"]) == (404, "NotFound"), missing.text
    request = api.post("/parcels", json=route_facts(pid), headers=auth("reserve_agency"))
    answer = await witness.no_trace(pid, request, 409, "AlreadyStarted")
    assert f"parcel-{pid}" in answer["detail"]


# --- idempotency ------------------------------------------------------------------------


def taken(state: dict[str, Any], action: Action) -> list[dict[str, Any]]:
    return [a for a in state["actions"] if a["action"] == action]


async def accepted_updates(client: Client, pid: str) -> Counter[str]:
    """Updates the history accepted, by name: what was applied, as Temporal recorded it."""
    history = await client.get_workflow_handle(workflow_id(pid)).fetch_history()
    names: dict[str, str] = {}
    counted: Counter[str] = Counter()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ADMITTED:
            request = event.workflow_execution_update_admitted_event_attributes.request
            names[request.meta.update_id] = request.input.name
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            attrs = event.workflow_execution_update_accepted_event_attributes
            name = attrs.accepted_request.input.name or names.get(attrs.protocol_instance_id, "")
            counted[name] += 1
    return counted


async def test_a_key_applies_an_action_once_and_only_for_its_caller(
    api: httpx.AsyncClient, witness: Witness, pid: str
):
    key = {"Idempotency-Key": f"review-{pid}"}
    async for move, _visit in walk(api, pid):
        if (move.step, move.token) == (Step.filing_review, "t-cityepb"):
            first = await attempt(api, pid, move.action, move.token, move.body, key)
            assert first.status_code == 200, first.text
            again = attempt(api, pid, move.action, move.token, move.body, key)
            assert await witness.no_trace(pid, again, 200) == first.json()
            # the key replayed by another caller is that caller's own request
            replayed = attempt(api, pid, move.action, "t-auditor", move.body, key)
            await witness.no_trace(pid, replayed, 403, "WrongRole")
        elif (move.step, move.token) == (Step.filing_review, "t-planning"):
            before = await witness.trace(pid)
            own = await attempt(api, pid, move.action, move.token, move.body, key)
            assert own.status_code == 200 and own.json()["seq"] == first.json()["seq"] + 1
            assert (await witness.trace(pid)).events > before.events
            assert len(taken(await get(api, pid), Action.filing_review)) == 2
        elif move.step == Step.risk_assessment_review and move.token == "t-planning":
            # three retries racing each other: one action, three equal answers
            race = {"Idempotency-Key": f"race-{pid}"}
            answers = await asyncio.gather(
                *(attempt(api, pid, move.action, move.token, ACCEPTED, race) for _ in range(3))
            )
            assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
            assert answers[0].json() == answers[1].json() == answers[2].json()
            assert len(taken(await get(api, pid), Action.risk_assessment_review)) == 1
        elif move.action == Action.secondary_pollution_inspection:
            # a side action leaves its step open: the key, not the step, tells a retry
            side = {"Idempotency-Key": f"inspection-{pid}"}
            inspected = await attempt(api, pid, move.action, move.token, move.body, side)
            assert inspected.status_code == 200, inspected.text
            again = attempt(api, pid, move.action, move.token, move.body, side)
            assert await witness.no_trace(pid, again, 200) == inspected.json()
            other = attempt(api, pid, move.action, move.token, {"compliant": False}, side)
            answer = await witness.no_trace(pid, other, 409, "IdempotencyConflict")
            assert f"#{inspected.json()['seq']}" in answer["detail"]
            elsewhere = attempt(api, pid, move.action, "t-depb-other", move.body, side)
            await witness.no_trace(pid, elsewhere, 403, "WrongDistrict")
            state = await get(api, pid)
            assert len(taken(state, Action.secondary_pollution_inspection)) == 1
            assert state["actions"][-1]["decisive"] == {"compliant": True}
            break
    counted = await accepted_updates(witness.client, pid)
    assert (counted["filing_review"], counted["risk_assessment_review"]) == (2, 2), counted
    assert counted["secondary_pollution_inspection"] == 1, counted


async def test_a_key_with_another_body_after_its_action_closed_the_step_is_a_conflict(
    api: httpx.AsyncClient, witness: Witness, pid: str
):
    """The key's first use answered the step, so the step is gone: the same key with
    another body is still the key's conflict (409 IdempotencyConflict), not WrongStage,
    and nothing is applied."""
    await start(api, route_facts(pid))
    key = {"Idempotency-Key": f"screening-{pid}"}
    screening = Action.closure_screening
    first = await attempt(api, pid, screening, "t-depb", {"result": "suspected"}, key)
    assert first.status_code == 200, first.text
    other = attempt(api, pid, screening, "t-depb", {"result": "cleared"}, key)
    answer = await witness.no_trace(pid, other, 409, "IdempotencyConflict")
    assert f"#{first.json()['seq']}" in answer["detail"], answer
    applied = taken(await get(api, pid), screening)
    assert [a["decisive"] for a in applied] == [{"result": "suspected"}], applied


async def test_a_key_after_the_release_returns_the_first_answer(
    api: httpx.AsyncClient, witness: Witness, pid: str
):
    await start(api, clean_facts(pid))
    key = {"Idempotency-Key": f"release-{pid}"}
    first = await attempt(api, pid, Action.release, "t-planning", {"notes": "准予"}, key)
    assert first.status_code == 200 and first.json()["status"] == "released", first.text
    again = attempt(api, pid, Action.release, "t-planning", {"notes": "准予"}, key)
    assert await witness.no_trace(pid, again, 200) == first.json()
    request = attempt(api, pid, Action.release, "t-planning", {})
    await witness.no_trace(pid, request, 409, "ParcelClosed")
    for headers in ({}, key):  # a key replayed by another caller is that caller's request
        request = attempt(api, pid, Action.release, "t-cityepb", {}, headers)
        await witness.no_trace(pid, request, 403, "WrongRole")
    assert len(taken(await get(api, pid), Action.release)) == 1


# --- many at once -----------------------------------------------------------------------

RACE_S = 60  # 50 actions at once answer in a few seconds


@pytest_asyncio.fixture(loop_scope="session")
async def race_server(
    api: httpx.AsyncClient,
    settings: Settings,
    temporal: WorkflowEnvironment,
) -> AsyncIterator[Server]:
    """A server of each race's own: a race that stalls it stalls no other test. Its files
    are the session's (its documents/ is the worker's: the rules read the samples it
    stores), its log is its server.log."""
    async with running_server(settings, temporal, settings.data_dir) as running:
        yield running


def concurrent(server: Server) -> httpx.AsyncClient:
    """A client of the real server, one connection per request in flight."""
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    return httpx.AsyncClient(base_url=server.url, limits=limits, timeout=RACE_S + 30)


async def race(
    http: httpx.AsyncClient, pid: str, tokens: list[str], action: Action, body: dict[str, Any]
) -> list[tuple[str, httpx.Response]]:
    """50 requests at once: half answer the open visit, half name none; some share keys."""
    offers = (await get(http, pid))["next_actions"]
    visit = next(a["visit"] for a in offers if a["action"] == action)
    sends = []
    for i in range(50):
        token = tokens[i % len(tokens)]
        headers = if_match(visit) if i % 2 else {}
        if i % 5 == 0:
            headers["Idempotency-Key"] = f"race-{i % 3}"
        sends.append((token, attempt(http, pid, action, token, body, headers)))
    began = time.monotonic()
    try:  # the loop must stay free: a request blocking it stalls every other one
        answers = await asyncio.wait_for(asyncio.gather(*(r for _, r in sends)), RACE_S)
    except TimeoutError:
        pytest.fail(f"50 {action.value} at once took over {time.monotonic() - began:.0f} s")
    return [(token, answer) for (token, _), answer in zip(sends, answers, strict=True)]


# The races of the route: every one that answers the step, among them the two that carry
# samples (the API reads the workflow's state before it stores them). A monitoring result
# that finds no diffusion opens the next monitoring visit at once.
RACED = (Step.closure_screening, Step.investigation, Step.filing_review, Step.monitoring)
NO_DIFFUSION = {"diffusion_found": False, "samples": CLEAN_SAMPLES}


async def test_fifty_actions_at_once_apply_once_per_step_visit(
    api: httpx.AsyncClient, witness: Witness, race_server: Server
):
    """Sent to the real server (its own event loop, its own database pool)."""
    pid = f"C{uuid.uuid4().hex[:10]}"
    await start(api, route_facts(pid))
    for move in ROUTE[: ROUTE.index(next(m for m in ROUTE if m.step == Step.monitoring)) + 1]:
        visit, _ = await open_visit(api, pid, move)
        if move.step not in RACED:
            await take(api, pid, move, visit or 0)
            continue
        if visit is None:  # the joint review's other bureau: raced with the first
            continue
        tokens = sorted({m.token for m in ROUTE if (m.step, m.action) == (move.step, move.action)})
        body = NO_DIFFUSION if move.step == Step.monitoring else await body_of(api, pid, move)
        async with concurrent(race_server) as http:
            answers = await race(http, pid, tokens, move.action, body)
        await applied_once_per_visit(api, witness, pid, move, tokens, answers)


async def applied_once_per_visit(
    api: httpx.AsyncClient,
    witness: Witness,
    pid: str,
    move: Move,
    tokens: list[str],
    answers: list[tuple[str, httpx.Response]],
) -> None:
    """No 500; each owner answered each visit once, as the history shows; every 200 is an
    application (a retry's the first one's), every application was answered 200."""
    statuses = Counter(a.status_code for _, a in answers)
    assert set(statuses) <= {200, 409, 429}, (
        move.action,
        statuses,
        [a.text for _, a in answers if a.status_code == 503][:3],
    )
    assert all(a.headers.get("Retry-After") for _, a in answers if a.status_code == 429)
    refused = {a.json()["error"] for _, a in answers if a.status_code == 409}
    assert refused <= {"WrongStage", "StaleVisit"}, refused
    applied = taken(await get(api, pid), move.action)
    per_visit = Counter((a["visit"], a["role"]) for a in applied)
    assert set(per_visit.values()) == {1}, (move.action, per_visit)
    if move.step == Step.monitoring:  # each result opens the next visit
        assert len(per_visit) == len({a["visit"] for a in applied}) >= 1, per_visit
    else:  # the step is answered once by each of its owners, then closed
        assert sorted(a["role"] for a in applied) == sorted(TOKENS[t]["role"] for t in tokens)
        assert len({a["visit"] for a in applied}) == 1, applied
    answered = {a.json()["seq"] for _, a in answers if a.status_code == 200}
    assert answered == {a["seq"] for a in applied}, (move.action, statuses, applied)
    for token in tokens:  # a key applies once, whichever visit it was sent for
        for key in {a.request.headers.get("Idempotency-Key") for _, a in answers} - {None}:
            seqs = {
                a.json()["seq"]
                for t, a in answers
                if (t, a.request.headers.get("Idempotency-Key"), a.status_code) == (token, key, 200)
            }
            assert len(seqs) <= 1, (token, key, seqs)
    counted = await accepted_updates(witness.client, pid)
    assert counted[move.action.value] == len(applied), counted


INSPECTIONS = 16  # more than Temporal's 10 updates in flight per workflow
# The Temporal client retries RESOURCE_EXHAUSTED for about 10 s (temporalio RetryConfig):
# an update refused past the limit surfaces (429) only if the parcel stays busy longer.
# The first inspections' projections are held this long, within the action timeout.
HOLD_S, ACTION_TIMEOUT_S = 20.0, 40


@pytest_asyncio.fixture(loop_scope="session")
async def held_server(
    settings: Settings, temporal: WorkflowEnvironment
) -> AsyncIterator[tuple[Server, SlowActivities]]:
    """A server and a worker of a task queue of their own; the worker holds the registry
    projections named in `hold.slow` (none at first) after writing them."""
    own = settings.model_copy(
        update={"task_queue": f"{settings.task_queue}-held", "action_timeout_s": ACTION_TIMEOUT_S}
    )
    hold = SlowActivities(HOLD_S, ())
    async with (
        httpx.AsyncClient() as http,
        build_worker(temporal.client, own, http, interceptors=[hold]),
        running_server(own, temporal, own.data_dir) as server,
    ):
        yield server, hold


async def until_applied(
    send: Callable[[], Awaitable[httpx.Response]], answer: httpx.Response
) -> httpx.Response:
    """A 429 retried after its Retry-After, as a client should, for at most RACE_S."""
    deadline = time.monotonic() + RACE_S
    while answer.status_code == 429:
        assert time.monotonic() < deadline, f"still 429 after {RACE_S} s: {answer.text}"
        await asyncio.sleep(float(answer.headers["Retry-After"]))
        answer = await send()
    return answer


async def test_past_the_parcels_queue_the_rest_are_429_and_each_is_applied_once(
    witness: Witness, held_server: tuple[Server, SlowActivities], pid: str
) -> None:
    """Inspections leave the works open, so every one is applied: none lost, none twice.
    The first stay in flight while their projections are held; of 16 at once the API lets
    a few reach the engine, queues a few and answers the rest 429 Busy with Retry-After at
    once (api.pacing; Temporal's own limit of 10 in flight is 429 too, across replicas:
    tests/unit/api/test_pacing.py). A retry with the same key applies each once."""
    server, hold = held_server
    async with concurrent(server) as http:
        await drive(http, pid, Step.works)

        def inspect(i: int) -> Awaitable[httpx.Response]:
            key = {"Idempotency-Key": f"inspection-{i}"}
            action = Action.secondary_pollution_inspection
            return attempt(http, pid, action, "t-depb", {"compliant": True}, key)

        hold.slow.add(PROJECT.name)
        sent = [asyncio.ensure_future(inspect(i)) for i in range(INSPECTIONS)]
        for each in sent:  # once one answers, what is admitted later is not held
            each.add_done_callback(lambda _: hold.slow.clear())
        try:
            answers = await asyncio.wait_for(asyncio.gather(*sent), RACE_S)
        except TimeoutError:
            pytest.fail(f"{INSPECTIONS} inspections at once took over {RACE_S} s")
        finally:
            hold.slow.clear()
        statuses = Counter(a.status_code for a in answers)
        assert set(statuses) <= {200, 429}, [a.text for a in answers]
        assert statuses[429] >= 1, f"no 429 past 10 updates in flight: {statuses}"
        busy = [a for a in answers if a.status_code == 429]
        assert {a.json()["error"] for a in busy} == {"Busy"}, busy[0].text
        assert all(a.headers["Retry-After"].isdigit() for a in busy)
        applied = taken(await get(http, pid), Action.secondary_pollution_inspection)
        seqs = {a.json()["seq"] for a in answers if a.status_code == 200}
        assert len(applied) == len(seqs) == statuses[200], (statuses, applied)
        for i, answer in enumerate(answers):
            answer = await until_applied(partial(inspect, i), answer)
            assert answer.status_code == 200, answer.text
            seqs.add(answer.json()["seq"])
        applied = taken(await get(http, pid), Action.secondary_pollution_inspection)
    assert len(seqs) == INSPECTIONS == len(applied), (statuses, applied)
    counted = await accepted_updates(witness.client, pid)
    assert counted["secondary_pollution_inspection"] == INSPECTIONS, counted
    print(f"{INSPECTIONS} inspections at once: {dict(statuses)}")
