"""Who may do what, when: the checks every action passes before it touches a parcel.

Pure functions over the parcel's state, its policy and the procedure table, used by
the update validator (so a refused action writes nothing to the history), again by the
update handler (two updates of one workflow task are validated against the same state),
and by the API on a closed parcel. The order is part of the contract:
authorisation (403), then the parcel and the step (409), then the body (413, 422).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from landflow.bodies import ACTION_BODIES, CommissionEvaluator, SoilTransport
from landflow.messages import ActionRequest, Actor, NextAction, Refusal
from landflow.policy import Policy
from landflow.procedure import (
    OWNER_ROLES,
    PROCEDURE,
    Answer,
    Owner,
    StepSpec,
    role_of,
    steps_for,
)
from landflow.state import Assignee, ParcelState, Task
from landflow.vocabulary import DISTRICT_ROLES, PARTY_ROLES, Action, Role, Stage, check_district
from rules import gb_standards


def reject(
    kind: Refusal, message: str, fields: list[dict[str, Any]] | None = None
) -> ApplicationError:
    extra = (fields,) if fields is not None else ()
    return ApplicationError(message, *extra, type=kind.value, non_retryable=True)


# --- who owes a step on this parcel ---------------------------------------------------


def resolve(owner: Owner, state: ParcelState) -> list[Assignee]:
    """The concrete role, district and party an owner stands for on this parcel; empty
    while it is not known yet (no evaluator commissioned, R4 not decided)."""
    parties = state.parties
    fixed = role_of(owner)
    if fixed is not None:
        return [_bound(owner, fixed, state.district)]
    if owner == Owner.investigator:
        role = state.investigator
        return [_bound(owner, role, state.district, parties.land_user)] if role else []
    if owner == Owner.responsible:
        role = parties.responsible_role
        return [_bound(owner, role, state.district, parties.responsible)] if role else []
    if owner == Owner.land_user:
        land_user = parties.land_user
        return [_bound(owner, Role.land_user, None, land_user)] if land_user else []
    if owner == Owner.evaluator:
        evaluator = parties.evaluator
        return [_bound(owner, Role.third_party_evaluator, None, evaluator)] if evaluator else []
    if owner == Owner.transport_epbs:
        # every district a soil transport of this parcel reported to (BJ 29; Law 41)
        reported = {
            d
            for a in state.actions
            if a.action == Action.soil_transport
            for d in (a.decisive.get("origin_district"), a.decisive.get("destination_district"))
            if d
        }
        return [_bound(owner, Role.district_epb, d) for d in sorted(reported)]
    raise ValueError(f"unknown owner {owner}")


def manager_for(owner: Owner, state: ParcelState) -> list[Assignee]:
    """Who owes a land user's step on a parcel with no land user bound (BJ 19: 土地使用权人
    或管理人, the holder or the manager): the reserve agency, which holds recovered land;
    otherwise the district government (Law 45 ¶2). Used only where no one else owes the
    step, so that it cannot stay without an owner."""
    if owner != Owner.land_user or state.parties.land_user is not None:
        return []
    recovered = state.facts.get("right_status") == "recovered"
    role = Role.reserve_agency if recovered else Role.district_government
    return [_bound(owner, role, state.district)]


def _bound(owner: Owner, role: Role, district: str | None, party: Any = None) -> Assignee:
    return Assignee(
        owner=owner,
        role=role,
        district=district if role in DISTRICT_ROLES else None,
        party=party.id if role in PARTY_ROLES and party is not None else None,
    )


def transport_assignees(origin: str, destination: str) -> list[Assignee]:
    districts = dict.fromkeys((origin, destination))
    return [_bound(Owner.transport_epbs, Role.district_epb, d) for d in districts]


def matches(actor: Actor, assignee: Assignee) -> bool:
    return (
        actor.role == assignee.role
        and (assignee.district is None or actor.district == assignee.district)
        and (
            assignee.role not in PARTY_ROLES
            or (assignee.party is not None and actor.party == assignee.party)
        )
    )


# --- the checks ---------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """An action the gate admits: the task and owner it answers, and its validated body."""

    action: Action
    task: Task
    assignee: int
    answer: Answer
    body: BaseModel


def known_action(name: str) -> Action:
    try:
        return Action(name)
    except ValueError:
        raise reject(
            Refusal.unknown_action,
            f"unknown action {name!r}; actions are {', '.join(a.value for a in Action)}",
        ) from None


def _authorise(state: ParcelState, actor: Actor, action: Action) -> None:
    """403 unless the actor is, on this parcel, one of the owners of this action."""
    owners = [a.by for spec in steps_for(action) for a in spec.answers if a.action == action]
    candidates = [c for owner in dict.fromkeys(owners) for c in resolve(owner, state)]
    # Open tasks name their assignees (a side task's, such as the destination EPB of a
    # transport, are not derivable from the owners): only those who answer this action.
    candidates += [
        a
        for t in state.tasks
        for a in t.assignees
        if any(x.action == action and x.by == a.owner for x in PROCEDURE[t.step].answers)
    ]
    same_role = [c for c in candidates if c.role == actor.role]
    if any(matches(actor, c) for c in same_role):
        return
    undecided = [o for o in dict.fromkeys(owners) if not resolve(o, state)]
    if not same_role and any(_may_become(actor, o, state) for o in undecided):
        return  # the rules have not named this owner yet: the step check says "not open"
    if not same_role:
        roles = sorted({c.role.value for c in candidates} or {o.value for o in owners})
        raise reject(
            Refusal.wrong_role,
            f"{action.value} on this parcel is for {' or '.join(roles)}, not {actor.role.value}",
        )
    if actor.role in DISTRICT_ROLES:
        districts = sorted({c.district or "" for c in same_role})
        raise reject(
            Refusal.wrong_district,
            f"{actor.role.value} of {actor.district or 'no district'} may not act on this "
            f"parcel's {action.value} (for {', '.join(districts)})",
        )
    bound = [c.party for c in same_role if c.party]
    raise reject(
        Refusal.wrong_party,
        f"{actor.role.value} {actor.party or '(no party)'} is not bound to parcel "
        f"{state.parcel_id} for {action.value}"
        + ("" if bound else f": no {actor.role.value} is bound to it yet"),
    )


def _may_become(actor: Actor, owner: Owner, state: ParcelState) -> bool:
    """Whether the rules could yet name this actor the owner: a role it can turn out to
    be, of this parcel's district, and for a company the one already bound to the parcel
    (only the land user is bound that early). Such a caller is early (409), not out of
    role; any other company is out of party (403)."""
    if actor.role not in OWNER_ROLES.get(owner, ()):
        return False
    land_user = state.parties.land_user if actor.role == Role.land_user else None
    return matches(actor, _bound(owner, actor.role, state.district, land_user))


def _open_task(
    state: ParcelState, actor: Actor, action: Action, visit: int | None
) -> tuple[Task, int, Answer]:
    found: list[tuple[Task, int, Answer]] = []
    for task in state.tasks:
        spec: StepSpec = PROCEDURE[task.step]
        for index, assignee in enumerate(task.assignees):
            if assignee.answered or not matches(actor, assignee):
                continue
            answer = next(
                (
                    a
                    for a in spec.answers
                    if a.action == action
                    and a.by == assignee.owner
                    and (a.only_after is None or a.only_after in task.allows)
                ),
                None,
            )
            if answer is not None:
                found.append((task, index, answer))
    if visit is not None:
        for candidate in found:
            if candidate[0].visit == visit:
                return candidate
        if found:
            raise reject(
                Refusal.stale_visit,
                f"{action.value} answers visit {visit}, but the open visit is {found[0][0].visit}",
            )
    if found:
        return found[0]
    if visit is not None and any(t.visit == visit for t in state.tasks):
        raise reject(
            Refusal.stale_visit, f"visit {visit} is open, but not for {action.value} by you"
        )
    blocking = state.blocking()
    where = f"step {blocking.step.value} (visit {blocking.visit})" if blocking else "no open step"
    raise reject(
        Refusal.wrong_stage,
        f"{action.value} is not open for {actor.role.value}: the parcel is at stage "
        f"{state.stage.value}, {where}"
        + (f"; visit {visit} is not open" if visit is not None else ""),
    )


def _field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "reason": err["msg"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def admit(state: ParcelState, actor: Actor, name: str, visit: int | None) -> Task:
    """The checks that need no body: who (403), the parcel's status and the step (409)."""
    action = known_action(name)
    _authorise(state, actor, action)
    return _open_claim(state, actor, action, visit)[0]


def _open_claim(
    state: ParcelState, actor: Actor, action: Action, visit: int | None
) -> tuple[Task, int, Answer]:
    if state.status != "running":
        raise reject(
            Refusal.parcel_closed,
            f"parcel {state.parcel_id} is {state.status}: no action is open",
        )
    return _open_task(state, actor, action, visit)


def _check_key(state: ParcelState, request: ActionRequest) -> None:
    """A key this parcel has seen: the same body was applied, another body conflicts; both
    whatever the step is now (the key's first use may have closed it)."""
    if request.key is None or request.key not in state.keys:
        return
    used = state.keys[request.key]
    if used.digest != request.digest():
        raise reject(
            Refusal.idempotency_conflict,
            f"this Idempotency-Key was used for action #{used.seq} with another body",
        )
    raise reject(
        Refusal.already_applied, f"already applied as action #{used.seq}", [{"seq": used.seq}]
    )


# The events an action brings besides its body (the update's envelope and signed actor,
# its workflow tasks, the projection that follows): measured about 4.5 KB on the
# lifecycle path (bench/history_size.py).
ACTION_EVENT_BYTES = 5_000


def check(
    state: ParcelState,
    policy: Policy,
    actor: Actor,
    name: str,
    request: ActionRequest,
    now: datetime,
    history_bytes: int = 0,
    *,
    rechecking: bool = False,
) -> Claim:
    """The claim this action makes on an open task, or an ApplicationError typed with its
    `Refusal` (the API maps it to a status).

    `rechecking`: the update handler's second look, for what another update of the same
    workflow task can have changed (the step, the answers, the keys). The citation and
    business checks are the validator's alone: validators do not run on replay, so a
    stricter check refuses new actions without failing the replay of one accepted before."""
    action = known_action(name)
    _authorise(state, actor, action)
    _check_key(state, request)
    task, index, answer = _open_claim(state, actor, action, request.visit)
    if request.body_error:
        fields = request.problems or [{"field": "body", "reason": request.body_error}]
        raise reject(Refusal.invalid_body, request.body_error, fields)
    limit = policy.body_limit(action)
    if request.size > limit:
        raise reject(
            Refusal.too_large,
            f"the {action.value} body is {request.size} bytes; the limit is {limit}",
        )
    # What the action brings beyond its body, and the continue-as-new that may follow it:
    # reserved by the validator only (the handler's re-check keeps what replays judged).
    reserve = 0 if rechecking else ACTION_EVENT_BYTES + state.carry_bytes
    _check_budget(state, policy, request.size + reserve, history_bytes)
    try:
        body = ACTION_BODIES[action].model_validate(request.body)
    except ValidationError as exc:
        raise reject(
            Refusal.invalid_body, f"invalid body for {action.value}", _field_errors(exc)
        ) from None
    if rechecking:
        return Claim(action, task, index, answer, body)
    problems = _citation_problems(policy, action, request)
    problems += _business_problems(state, policy, action, body, now)
    if problems:
        listed = "; ".join(f"{p['field']}: {p['reason']}" for p in problems)
        raise reject(Refusal.invalid_body, f"{action.value} refused: {listed}", problems)
    return Claim(action, task, index, answer, body)


def _check_budget(state: ParcelState, policy: Policy, size: int, history_bytes: int) -> None:
    budget = policy.history
    if history_bytes + size > budget.max_run_bytes:
        raise reject(
            Refusal.history_budget,
            f"this run's history is {history_bytes} bytes; the action would pass its budget "
            f"of {budget.max_run_bytes} (policy history.max_run_bytes); retry shortly, the "
            "parcel continues as new",
        )
    if state.history_bytes_before + history_bytes + size > budget.max_parcel_bytes:
        raise reject(
            Refusal.history_budget,
            f"parcel {state.parcel_id} has used its history budget of "
            f"{budget.max_parcel_bytes} bytes (policy history.max_parcel_bytes)",
        )


def _citation_problems(
    policy: Policy, action: Action, request: ActionRequest
) -> list[dict[str, Any]]:
    problems = []
    cited = {d.kind for d in request.documents}
    missing = [k.value for k in policy.required_documents(action) if k not in cited]
    if missing:
        reason = f"cite a document of kind {', '.join(missing)} (policy documents_required)"
        problems.append({"field": "documents", "reason": reason})
    if action == Action.investigation_report and request.samples is None:
        problems.append(
            {"field": "samples", "reason": "send samples or cite a lab_results document"}
        )
    if request.samples is not None and request.samples.count > policy.max_samples:
        reason = f"at most {policy.max_samples} samples per report (policy max_samples)"
        problems.append({"field": "samples", "reason": reason})
    return problems


def _unknown_items(field: str, items: list[Any]) -> list[dict[str, Any]]:
    return [
        {"field": f"{field}[{i}].item", "reason": f"unknown GB 36600 item {entry.item!r}"}
        for i, entry in enumerate(items)
        if gb_standards.find_item(entry.item) is None
    ]


def _business_problems(
    state: ParcelState, policy: Policy, action: Action, body: Any, now: datetime
) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    if (
        action == Action.choose_path
        and state.stage == Stage.risk_control
        and body.path != "remediation"
    ):
        problems.append(
            {"field": "path", "reason": "under risk control only 'remediation' can be chosen now"}
        )
    if isinstance(body, SoilTransport):
        problems += _transport_problems(state, policy, body, now)
    if isinstance(body, CommissionEvaluator):
        contractors = {
            p.id for p in (state.parties.contractor, *state.parties.past_contractors) if p
        }
        if body.party.id in contractors:
            problems.append(
                {
                    "field": "party.id",
                    "reason": f"{body.party.id} is a remediation contractor of this parcel; the "
                    "evaluator must be another firm (Law 65 另行委托; BJ 30)",
                }
            )
    if action == Action.risk_assessment_report:
        problems += _unknown_items("targets", body.targets)
        problems += _listing_needs_targets(state, body)
    if action == Action.evaluation:
        problems += _unknown_items("results", body.results)
    if (
        action == Action.investigation_report
        and state.facts.get("current_use") == "farmland"
        and body.ph is None
    ):
        problems.append(
            {"field": "ph", "reason": "required to classify farmland samples (GB 15618)"}
        )
    return problems


def _listing_needs_targets(state: ParcelState, body: Any) -> list[dict[str, Any]]:
    """Above intervention values the parcel is listed whatever the report concludes (R11;
    GB 36600 5.3.3): the targets and the recommendation are what control or remediation,
    and the later evaluation (R8), are held to."""
    r5 = state.latest("R5")
    if r5 is None or r5.outcome != "control_or_remediation" or not body.acceptable:
        return []  # an unacceptable risk is checked by the body itself
    reason = "required: a sample exceeds the intervention value, so the parcel is listed"
    problems = []
    if not body.targets:
        problems.append({"field": "targets", "reason": f"{reason} (GB 36600 5.3.3; Law 61)"})
    if body.recommendation is None:
        problems.append({"field": "recommendation", "reason": f"{reason} (BJ 19)"})
    return problems


def _transport_problems(
    state: ParcelState, policy: Policy, body: SoilTransport, now: datetime
) -> list[dict[str, Any]]:
    problems = []
    if body.origin_district != state.district:
        problems.append(
            {
                "field": "origin_district",
                "reason": f"the soil leaves parcel {state.parcel_id} in {state.district}, "
                f"not {body.origin_district} (R7 tells the origin's EPB)",
            }
        )
    try:
        check_district(body.destination_district)
    except ValueError as exc:
        problems.append({"field": "destination_district", "reason": str(exc)})
    earliest = now + timedelta(hours=policy.transport_notice_hours)
    when = body.time if body.time.tzinfo else body.time.replace(tzinfo=now.tzinfo)
    if when < earliest:
        problems.append(
            {
                "field": "time",
                "reason": f"report at least {policy.transport_notice_hours:g} hours in advance "
                f"(Law 41 提前): the transport must start after {earliest.isoformat()}",
            }
        )
    return problems


def next_actions(state: ParcelState) -> list[NextAction]:
    """What each owner of an open task may do now (the procedure table, on this parcel)."""
    found: list[NextAction] = []
    for task in state.tasks:
        for assignee in task.assignees:
            for answer in PROCEDURE[task.step].answers:
                if answer.by != assignee.owner or (
                    answer.only_after is not None and answer.only_after not in task.allows
                ):
                    continue
                if answer.ends_step and (assignee.answered or not assignee.owes):
                    continue
                found.append(
                    NextAction(
                        action=answer.action,
                        role=assignee.role,
                        district=assignee.district,
                        party=assignee.party,
                        step=task.step,
                        visit=task.visit,
                        deadline=task.deadline,
                        overdue=task.overdue,
                        ends_step=answer.ends_step,
                    )
                )
    return found
