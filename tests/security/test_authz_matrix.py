"""Every role x every action x own and other district, at the step where the action is open.

Only the role the step waits on, from the parcel's district, succeeds; every other caller
gets 401 (no or an unknown token) or 403 and changes nothing. One exception, by design:
the filing is reviewed by the city EPB and then the planning bureau, so at the city EPB's
turn the planning bureau is told 409 (not its turn yet) rather than 403.
All refused attempts at a step go first, then the allowed move takes the parcel on.
"""

from __future__ import annotations

import httpx

from landflow.contracts import DISTRICT_ROLES, Action, Role, Step
from tests.helpers import DISTRICT, TOKENS
from tests.security.drive import (
    OPEN,
    OWNERS,
    ROUTE,
    VALID_BODY,
    Move,
    Witness,
    attempt,
    drive,
    first_visit,
    take,
    token_of,
    trace,
)

CALLERS: list[str | None] = [*TOKENS, None, "t-unknown"]


def expected(caller: str | None, waiting_on: Role, action: Action) -> int:
    entry = TOKENS.get(caller or "")
    if entry is None:
        return 401
    role = Role(entry["role"])
    if role != waiting_on:
        return 409 if role in OWNERS[action] else 403
    if role in DISTRICT_ROLES and entry["district"] != DISTRICT:
        return 403
    return 200


def open_actions(move: Move) -> list[Action]:
    """The action the ROUTE takes at this step first, then any other open there."""
    return [move.action, *sorted(OPEN[move.step] - {move.action})]


async def refuse_all_but_the_owner(
    api: httpx.AsyncClient, witness: Witness, pid: str, move: Move
) -> None:
    before = await trace(witness.client, witness.engine, pid)
    tries = [
        (action, caller, expected(caller, move.role, action))
        for action in open_actions(move)
        for caller in CALLERS
    ]
    refused = [t for t in tries if t[2] != 200]
    # one after the other: concurrent updates to one workflow queue up and are slower
    answers = [await attempt(api, pid, a, caller, VALID_BODY[a]) for a, caller, _ in refused]
    wrong = [
        (action.value, TOKENS.get(caller or "", caller), status, answer.status_code, answer.text)
        for (action, caller, status), answer in zip(refused, answers, strict=True)
        if answer.status_code != status
    ]
    assert not wrong, f"at {move.step}: {wrong}"
    assert await trace(witness.client, witness.engine, pid) == before, f"at {move.step}"
    allowed = {(a, c) for a, c, s in tries if s == 200}
    assert allowed == {(a, token_of(move.role)) for a in open_actions(move)}


async def test_only_the_assigned_role_of_the_district_acts_at_each_step(api, pid, witness):
    await drive(api, pid)
    for move in ROUTE:
        await refuse_all_but_the_owner(api, witness, pid, move)
        before = await trace(witness.client, witness.engine, pid)
        await take(api, pid, move)
        assert (await trace(witness.client, witness.engine, pid)).events > before.events


async def test_choosing_remediation_during_control_measures(api, pid, witness):
    """The one open (step, action) pair the ROUTE does not take."""
    at = await drive(api, pid, first_visit(Step.control_measures))
    await refuse_all_but_the_owner(api, witness, pid, ROUTE[at])
    state = await take(
        api,
        pid,
        Move(
            Step.control_measures,
            Action.choose_path,
            Role.district_government,
            {"path": "remediation"},
        ),
    )
    assert (state["stage"], state["waiting_on"]) == ("remediation", "district_government")
