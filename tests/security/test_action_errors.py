"""Every action refused the way issue 2 says, leaving no trace; retries applied once.

For each action: at every step where it is not open its owner gets 409; every other role
gets 403 even with a body that is not JSON, and so does its owner from the other district;
a bad body at the right step gets 422 naming the field; no or an unknown token gets 401.
After each refusal the workflow history and the parcel's registry rows are unchanged.
"""

from __future__ import annotations

import asyncio

import pytest

from landflow.contracts import DISTRICT_ROLES, Action, Role, Step
from tests.helpers import OTHER_DISTRICT, TOKENS, auth, clean_facts, facts, start
from tests.security.drive import (
    BAD_BODY,
    NOT_JSON,
    OPEN,
    OWNER,
    OWNERS,
    ROUTE,
    VALID_BODY,
    attempt,
    bearer,
    drive,
    first_visit,
    parcel,
    token_of,
)

OPEN_AT = {action: next(m.step for m in ROUTE if m.action == action) for action in Action}


def test_the_route_covers_every_step_and_action():
    assert {m.step for m in ROUTE} == set(Step)
    assert {m.action for m in ROUTE} == set(Action)
    assert all(m.action in OPEN[m.step] for m in ROUTE)


@pytest.mark.parametrize("action", list(Action))
async def test_wrong_stage_is_409(api, parked, witness, action):
    owner = token_of(OWNER[action])
    for step, pid in parked.items():
        if action in OPEN[step]:
            continue
        answer = await witness.no_trace(
            pid, attempt(api, pid, action, owner, VALID_BODY[action]), 409, "WrongStage"
        )
        assert action.value in answer["detail"]


@pytest.mark.parametrize("action", list(Action))
async def test_wrong_role_is_403_whatever_the_body(api, parked, witness, action):
    pid, owner = parked[OPEN_AT[action]], OWNER[action]
    for token, entry in TOKENS.items():
        role = Role(entry["role"])
        if role == owner:
            continue
        # the planning bureau reviews filings too, after the city EPB: not its turn yet
        status, error = (409, "WrongStage") if role in OWNERS[action] else (403, "WrongRole")
        await witness.no_trace(pid, attempt(api, pid, action, token, NOT_JSON), status, error)


@pytest.mark.parametrize(
    "action", [a for a in Action if OWNER[a] in DISTRICT_ROLES], ids=lambda a: a.value
)
async def test_owner_from_the_other_district_is_403(api, parked, witness, action):
    pid, other = parked[OPEN_AT[action]], token_of(OWNER[action], OTHER_DISTRICT)
    for body in (VALID_BODY[action], NOT_JSON):
        answer = await witness.no_trace(
            pid, attempt(api, pid, action, other, body), 403, "WrongDistrict"
        )
        assert OTHER_DISTRICT in answer["detail"]


@pytest.mark.parametrize("action", list(Action))
async def test_bad_body_at_the_right_step_is_422_naming_the_field(api, parked, witness, action):
    pid, owner = parked[OPEN_AT[action]], token_of(OWNER[action])
    body, field = BAD_BODY[action]
    answer = await witness.no_trace(pid, attempt(api, pid, action, owner, body), 422, "InvalidBody")
    assert field in [f["field"] for f in answer["fields"]], answer
    for garbage in (NOT_JSON, b"[1, 2]", b'{"unexpected": true}'):
        answer = await witness.no_trace(
            pid, attempt(api, pid, action, owner, garbage), 422, "InvalidBody"
        )
        assert answer["fields"], answer


@pytest.mark.parametrize("action", list(Action))
async def test_no_or_unknown_token_is_401(api, parked, witness, action):
    pid = parked[OPEN_AT[action]]
    for headers in (
        {},
        bearer("t-unknown"),
        bearer(token_of(OWNER[action]) + "x"),
        {"Authorization": f"Basic {token_of(OWNER[action])}"},
    ):
        response = api.post(
            f"/parcels/{pid}/actions/{action}", json=VALID_BODY[action], headers=headers
        )
        await witness.no_trace(pid, response, 401, "Unauthenticated")
    no_token = await api.post(f"/parcels/{pid}/actions/{action}", json={})
    assert no_token.headers["WWW-Authenticate"] == "Bearer"


async def test_unknown_action_and_parcel(api, parked, witness):
    pid = parked[Step.release]
    await witness.no_trace(
        pid, attempt(api, pid, "demolish", token_of(Role.planning_land), {}), 422
    )
    missing = await attempt(api, pid + "-none", Action.release, token_of(Role.planning_land), {})
    assert missing.status_code == 404, missing.text


async def test_duplicate_start_is_409_naming_the_workflow(api, parked, witness):
    for step in (Step.closure_screening, Step.works):
        pid = parked[step]
        request = api.post("/parcels", json=facts(pid), headers=auth("reserve_agency"))
        answer = await witness.no_trace(pid, request, 409, "AlreadyStarted")
        assert f"parcel-{pid}" in answer["detail"]


def taken(state: dict, action: Action) -> int:
    return sum(1 for a in state["actions"] if a["action"] == action.value)


async def test_same_idempotency_key_twice_applies_once(api, pid, witness):
    at = await drive(api, pid, first_visit(Step.filing_city_epb))
    move, key = ROUTE[at], {"Idempotency-Key": f"review-{pid}"}
    first = await attempt(api, pid, move.action, token_of(move.role), move.body, **key)
    assert first.status_code == 200, first.text
    again = attempt(api, pid, move.action, token_of(move.role), move.body, **key)
    assert await witness.no_trace(pid, again, 200) == first.json()
    assert taken(await parcel(api, pid), Action.filing_review) == 1
    # the key replayed by another caller is that caller's own request, judged as such
    replayed = attempt(api, pid, move.action, token_of(Role.auditor), move.body, **key)
    await witness.no_trace(pid, replayed, 403, "WrongRole")

    # three retries racing each other: one action, three equal answers
    move, key = ROUTE[at + 1], {"Idempotency-Key": f"second-review-{pid}"}
    answers = await asyncio.gather(
        *(attempt(api, pid, move.action, token_of(move.role), move.body, **key) for _ in range(3))
    )
    assert [a.status_code for a in answers] == [200] * 3, [a.text for a in answers]
    assert answers[0].json() == answers[1].json() == answers[2].json()
    state = await parcel(api, pid)
    assert taken(state, Action.filing_review) == 2 and state["stage"] == "listing"

    # a different key is a new request: refused now, since the step has moved on
    other = attempt(
        api, pid, move.action, token_of(move.role), move.body, **{"Idempotency-Key": "2"}
    )
    await witness.no_trace(pid, other, 409, "WrongStage")


async def test_same_idempotency_key_after_release_returns_the_first_answer(api, pid, witness):
    await start(api, clean_facts(pid))
    key, planning = {"Idempotency-Key": f"release-{pid}"}, token_of(Role.planning_land)
    first = await attempt(api, pid, Action.release, planning, {"notes": "准予开发"}, **key)
    assert first.status_code == 200 and first.json()["stage"] == "released", first.text
    again = attempt(api, pid, Action.release, planning, {"notes": "准予开发"}, **key)
    assert await witness.no_trace(pid, again, 200) == first.json()
    # the workflow has completed: without the key the same request is out of stage,
    # and other roles are still told they are out of role
    await witness.no_trace(pid, attempt(api, pid, Action.release, planning, {}), 409, "WrongStage")
    for headers in ({}, key):  # a key replayed by another caller is that caller's request
        request = attempt(api, pid, Action.release, token_of(Role.city_epb), {}, **headers)
        await witness.no_trace(pid, request, 403, "WrongRole")
    state = await parcel(api, pid)
    assert taken(state, Action.release) == 1
