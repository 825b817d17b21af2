"""What the API learns from the registry before it asks the engine about an action.

Nothing here refuses anything: refusals are the workflow's gate on its own state. The
registry only spares the state query where it already shows the answer.
"""

from __future__ import annotations

from sqlmodel import Session

from landflow.messages import LEGACY_PARCEL_WORKFLOW, Actor
from landflow.procedure import PROCEDURE
from landflow.state import Assignee
from landflow.vocabulary import Action, Role, Step
from registry import queries
from workflows.gate import matches

# Parcels known to run today's procedure. A parcel never goes back to the first one (a
# restart starts today's), so a positive answer can be kept; bounded by what fits here.
_ON_TODAYS_PROCEDURE: dict[str, None] = {}
_REMEMBERED = 100_000


def before_the_engine(
    session: Session,
    parcel_id: str,
    caller: Actor,
    action: Action,
    visit: int | None,
    carries_samples: bool,
) -> tuple[bool, bool]:
    """Whether the parcel runs the first procedure, and (for an action that carries
    samples) whether the registry shows the caller owing an open step that takes it.

    The registry is written before an action's reply, so a caller answering the step it
    was just shown finds it there, and the state query (a round trip through the worker,
    the slowest part of a sample report under load) is skipped. Anything else asks the
    workflow; the workflow judges every action again, so a registry a moment behind
    costs at most a stored sample blob that no record refers to."""
    legacy = _runs_legacy_procedure(session, parcel_id)
    if legacy or not carries_samples:
        return legacy, False
    return False, _registry_shows_owed(session, parcel_id, caller, action, visit)


def _registry_shows_owed(
    session: Session, parcel_id: str, caller: Actor, action: Action, visit: int | None
) -> bool:
    """Only steps with one owner, whose every answer takes this action (the investigation,
    the evaluation): a task row names a role, not the owner, and elsewhere one role may
    owe another action of the same step."""
    registered = queries.current_run(session, parcel_id=parcel_id)
    if registered is None or registered.status != "running":
        return False
    for row in queries.open_tasks(session, run_id=registered.run_id):
        answers = PROCEDURE[Step(row.step)].answers
        owners = {a.by for a in answers}
        if len(owners) != 1 or any(a.action != action or a.only_after for a in answers):
            continue
        owner = Assignee(
            owner=owners.pop(), role=Role(row.role), district=row.district, party=row.party
        )
        if matches(caller, owner) and (visit is None or row.visit == visit):
            return True
    return False


def _runs_legacy_procedure(session: Session, parcel_id: str) -> bool:
    """Whether the parcel's current run is of the first procedure (its bodies are not
    lifted to references; see workflows/legacy)."""
    if parcel_id in _ON_TODAYS_PROCEDURE:
        return False
    registered = queries.current_run(session, parcel_id=parcel_id)
    if registered is None:  # not projected yet: only today's procedure starts parcels
        return False
    if registered.procedure == LEGACY_PARCEL_WORKFLOW:
        return True
    if len(_ON_TODAYS_PROCEDURE) >= _REMEMBERED:
        _ON_TODAYS_PROCEDURE.pop(next(iter(_ON_TODAYS_PROCEDURE)))
    _ON_TODAYS_PROCEDURE[parcel_id] = None
    return False
