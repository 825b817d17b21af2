"""What the first procedure calls, and how it looks in the current procedure's shape.

Its activities keep their first names (histories name them); `activities/legacy.py`
implements them on today's registry. `as_current_state` lets the API, the inbox and the
registry read a legacy parcel like any other.
"""

from __future__ import annotations

from pathlib import Path

from landflow import state as current
from landflow.decisions import DecisionBrief
from landflow.messages import LEGACY_PARCEL_WORKFLOW, sha256_json
from landflow.procedure import Owner
from landflow.vocabulary import DISTRICT_ROLES, Action, Role, Stage, Step
from workflows.legacy import contracts as legacy
from workflows.legacy.gate import STEP_ACTIONS

LOAD_POLICY = "load_policy"
DECIDE = "decide"
SYNC_REGISTRY = "sync_registry"
CHANGE_LISTS = "change_lists"
NOTIFY_DEADLINE = "notify_deadline"
ACTIVITIES = (LOAD_POLICY, DECIDE, SYNC_REGISTRY, CHANGE_LISTS, NOTIFY_DEADLINE)
POLICY_FILE = Path(__file__).with_name("policy-2026-1.yaml")  # the deadlines it ran under


def current_step(step: legacy.Step) -> Step:
    """The two sequential filing steps of the first procedure are one joint review now."""
    if step in (legacy.Step.filing_city_epb, legacy.Step.filing_planning_land):
        return Step.filing_review
    return Step(step.value)


OWNER_OF = {
    Role.responsible_party: Owner.responsible,
    Role.third_party_evaluator: Owner.evaluator,
}


def _assignee(role: legacy.Role, district: str) -> current.Assignee:
    mapped = Role(role.value)
    return current.Assignee(
        owner=OWNER_OF.get(mapped, Owner(mapped.value)),
        role=mapped,
        district=district if mapped in DISTRICT_ROLES else None,
    )


def _task(state: legacy.ParcelState, visit: int, busy: bool) -> list[current.Task]:
    if busy or state.step is None or state.waiting_on is None or state.deadline is None:
        return []
    return [
        current.Task(
            visit=visit,
            step=current_step(state.step),
            stage=Stage(state.stage.value),
            opened_at=state.history[-1].entered,
            deadline=state.deadline,
            overdue=state.overdue,
            assignees=[_assignee(state.waiting_on, state.district)],
        )
    ]


def _step_of(action: legacy.Action) -> Step:
    step = next(s for s, (_, actions) in STEP_ACTIONS.items() if action in actions)
    return current_step(step)


def _action(seq: int, record: legacy.ActionRecord) -> current.ActionEntry:
    action = Action(record.action.value)
    fields = current.DECISIVE_FIELDS.get(action, ())
    return current.ActionEntry(
        seq=seq,
        visit=0,
        step=_step_of(record.action),
        action=action,
        role=Role(record.role.value),
        subject=record.subject,
        at=record.at,
        digest=sha256_json(record.payload),
        decisive={k: record.payload[k] for k in fields if k in record.payload},
    )


def _lists(state: legacy.ParcelState) -> list[current.ListMembership]:
    listing = next((v for v in state.history if v.stage == legacy.Stage.listing), None)
    if listing is None:
        return []
    release = next((v for v in state.history if v.stage == legacy.Stage.released), None)
    left = release.entered if release and not state.listed else None
    return [
        current.ListMembership(
            list_name=name,
            entered_at=listing.entered,
            left_at=left,
            reason="risk not acceptable for the planned use (Law 61)",
            citation="BJ 18; Law 58, 61",
            left_reason="released for the planned use (Law 66)" if left else None,
        )
        for name in ("contaminated", "negative")
    ]


def as_current_state(
    state: legacy.ParcelState, visits: int, busy: bool, run_id: str
) -> current.ParcelState:
    return current.ParcelState(
        parcel_id=state.parcel_id,
        procedure=LEGACY_PARCEL_WORKFLOW,
        run_id=run_id,
        facts=state.facts,
        district=state.district,
        stage=Stage(state.stage.value),
        status="released" if state.stage == legacy.Stage.released else "running",
        stages=[
            current.StageVisit(stage=Stage(v.stage.value), entered=v.entered, left=v.left, by=v.by)
            for v in state.history
        ],
        tasks=_task(state, visits, busy),
        actions=[_action(i, a) for i, a in enumerate(state.actions, start=1)],
        decisions=[DecisionBrief.model_validate(d.model_dump()) for d in state.decisions],
        lists=_lists(state),
        investigator=Role(state.investigator.value) if state.investigator else None,
        seq=len(state.actions),
        visits=visits,
    )
