"""The first procedure's gate, frozen: who may do what, when (see workflows/legacy/parcel.py).

Pure functions over the workflow state, used by the update validator (so a rejected
action writes nothing to history) and by the API. Order matters and is part of the
contract: authorisation (403), then stage (409), then body (422).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.exceptions import ApplicationError

from workflows.legacy.contracts import (
    ACTION_BODIES,
    DISTRICT_ROLES,
    Action,
    Actor,
    ParcelState,
    Role,
    Stage,
    Step,
)

# What each step lets its role do, and the stage it belongs to.
STEP_ACTIONS: dict[Step, tuple[Stage, frozenset[Action]]] = {
    Step.closure_screening: (Stage.closure_screening, frozenset({Action.closure_screening})),
    Step.investigation: (Stage.investigation, frozenset({Action.investigation_report})),
    Step.filing_city_epb: (Stage.filing, frozenset({Action.filing_review})),
    Step.filing_planning_land: (Stage.filing, frozenset({Action.filing_review})),
    Step.choose_path: (Stage.listing, frozenset({Action.choose_path})),
    Step.control_measures: (
        Stage.risk_control,
        frozenset({Action.control_measures, Action.choose_path}),
    ),
    Step.monitoring: (
        Stage.risk_control,
        frozenset({Action.monitoring_result, Action.choose_path}),
    ),
    Step.isolation: (Stage.risk_control, frozenset({Action.isolation_measures})),
    Step.remediation_plan: (Stage.remediation, frozenset({Action.remediation_plan})),
    Step.works: (Stage.remediation, frozenset({Action.soil_transport, Action.works_completed})),
    Step.evaluation: (Stage.evaluation, frozenset({Action.evaluation})),
    Step.release: (Stage.release, frozenset({Action.release})),
}

INVESTIGATORS = frozenset({Role.land_user, Role.reserve_agency, Role.district_government})
REMEDIATORS = frozenset({Role.responsible_party, Role.district_government})
_STATIC_ROLES: dict[Action, frozenset[Role]] = {
    Action.closure_screening: frozenset({Role.district_epb}),
    Action.filing_review: frozenset({Role.city_epb, Role.planning_land}),
    Action.choose_path: frozenset({Role.district_government}),
    Action.control_measures: frozenset({Role.district_government}),
    Action.monitoring_result: frozenset({Role.district_government}),
    Action.isolation_measures: frozenset({Role.land_user}),
    Action.evaluation: frozenset({Role.third_party_evaluator}),
    Action.release: frozenset({Role.planning_land}),
}


def roles_for(action: Action, state: ParcelState) -> frozenset[Role]:
    """The roles assigned to an action on this parcel (rules R2 and R4 narrow two of them)."""
    if action == Action.investigation_report:
        return frozenset({state.investigator}) if state.investigator else INVESTIGATORS
    if action in (Action.remediation_plan, Action.soil_transport, Action.works_completed):
        return frozenset({state.remediator}) if state.remediator else REMEDIATORS
    return _STATIC_ROLES[action]


def reject(kind: str, message: str, details: Any = None) -> ApplicationError:
    extra = (details,) if details is not None else ()
    return ApplicationError(message, *extra, type=kind, non_retryable=True)


def _field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "reason": err["msg"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def check_action(
    state: ParcelState,
    busy: bool,
    actor: Actor,
    name: str,
    payload: dict[str, Any],
    body_error: str | None = None,
) -> BaseModel:
    """Return the validated body, or raise ApplicationError typed for the API to map."""
    try:
        action = Action(name)
    except ValueError:
        raise reject(
            "UnknownAction",
            f"unknown action {name!r}; actions are {', '.join(a.value for a in Action)}",
        ) from None
    allowed_roles = roles_for(action, state)
    if actor.role not in allowed_roles:
        raise reject(
            "WrongRole",
            f"{action.value} on this parcel is for "
            f"{' or '.join(sorted(allowed_roles))}, not {actor.role.value}",
        )
    if actor.role in DISTRICT_ROLES and actor.district != state.district:
        raise reject(
            "WrongDistrict",
            f"{actor.role.value} of {actor.district or 'no district'} "
            f"may not act on a parcel in {state.district}",
        )
    open_actions = STEP_ACTIONS[state.step][1] if state.step and not busy else frozenset()
    if action not in open_actions or actor.role != state.waiting_on:
        waiting = f"waiting on {state.waiting_on.value}" if state.waiting_on else "not waiting"
        raise reject(
            "WrongStage",
            f"{action.value} is not open: the parcel is at stage {state.stage.value} ({waiting})",
        )
    if body_error:
        raise reject("InvalidBody", body_error, [{"field": "body", "reason": body_error}])
    try:
        body = ACTION_BODIES[action].model_validate(payload)
    except ValidationError as exc:
        raise reject(
            "InvalidBody", f"invalid body for {action.value}", _field_errors(exc)
        ) from None
    _check_business(state, action, body)
    return body


def _check_business(state: ParcelState, action: Action, body: Any) -> None:
    if (
        action == Action.choose_path
        and state.stage == Stage.risk_control
        and body.path != "remediation"
    ):
        raise reject(
            "InvalidBody",
            "the parcel is already under risk control",
            [{"field": "path", "reason": "only 'remediation' can be chosen now"}],
        )
    if (
        action == Action.evaluation
        and state.contractor
        and body.evaluator.casefold() == state.contractor.casefold()
    ):
        raise reject(
            "InvalidBody",
            "the evaluator must not be the remediation contractor",
            [
                {
                    "field": "evaluator",
                    "reason": f"{body.evaluator} is the contractor (BJ 30; Law 65)",
                }
            ],
        )
