"""What ops see in the Temporal Web UI: search attributes, summary and current details.

No personal data goes here (search attributes are not encrypted): parcel code,
district, stage, role ids and dates only; the static summary carries the parcel's
public site name (the agency's own name for it), as on the public lists.
"""

from __future__ import annotations

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from landflow import messages as names
from landflow.facts import ParcelFacts
from landflow.state import ParcelState

PARCEL_ID = SearchAttributeKey.for_keyword(names.PARCEL_ID_SA.name)
DISTRICT = SearchAttributeKey.for_keyword(names.DISTRICT_SA.name)
STAGE = SearchAttributeKey.for_keyword(names.STAGE_SA.name)
WAITING_ON = SearchAttributeKey.for_keyword(names.WAITING_ON_SA.name)
ASSIGNEES = SearchAttributeKey.for_keyword_list(names.ASSIGNEES_SA.name)
OVERDUE = SearchAttributeKey.for_bool(names.OVERDUE_SA.name)
LISTED = SearchAttributeKey.for_bool(names.LISTED_SA.name)
DEADLINE_AT = SearchAttributeKey.for_datetime(names.DEADLINE_SA.name)

ALL_KEYS = (PARCEL_ID, DISTRICT, STAGE, WAITING_ON, ASSIGNEES, OVERDUE, LISTED, DEADLINE_AT)
_CLI_KINDS = {
    "keyword": "Keyword",
    "keyword_list": "KeywordList",
    "bool": "Bool",
    "datetime": "Datetime",
}


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    return [f"{a.name}={_CLI_KINDS[a.kind]}" for a in names.SEARCH_ATTRIBUTES]


def initial_search_attributes(facts: ParcelFacts) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(PARCEL_ID, facts.parcel_id),
            SearchAttributePair(DISTRICT, facts.district),
            SearchAttributePair(STAGE, "intake"),
            SearchAttributePair(OVERDUE, False),
            SearchAttributePair(LISTED, False),
        ]
    )


def initial_values(unset: bool = False) -> dict[str, object]:
    """What `initial_search_attributes` set at start. `unset`: the rest counts as unset (as
    it is), so the first sync upserts only what it changes; registrations before the
    `quiet_intake` amendment upserted the unset ones once more."""
    values: dict[str, object] = {STAGE.name: "intake", OVERDUE.name: False, LISTED.name: False}
    if unset:
        values |= {WAITING_ON.name: None, ASSIGNEES.name: None, DEADLINE_AT.name: None}
    return values


def current_values(state: ParcelState) -> dict[str, object]:
    blocking = state.blocking()
    waiting = state.waiting_on()
    owed = sorted(
        {a.role.value for t in state.tasks for a in t.assignees if a.owes and not a.answered}
    )
    return {
        STAGE.name: state.stage.value,
        WAITING_ON.name: waiting[0].value if waiting else None,
        ASSIGNEES.name: owed or None,
        OVERDUE.name: any(t.overdue for t in state.tasks if t.blocking),
        LISTED.name: state.listed,
        DEADLINE_AT.name: blocking.deadline if blocking else None,
    }


def search_attribute_updates(
    state: ParcelState, last: dict[str, object]
) -> tuple[list[SearchAttributeUpdate], dict[str, object]]:
    """Only what changed since `last`: every upsert is an event in the history."""
    now = current_values(state)
    updates: list[SearchAttributeUpdate] = []
    for name, value in now.items():
        if last.get(name, object()) == value:
            continue
        updates.append(_update(name, value))
    return updates, now


def _update(name: str, value: object) -> SearchAttributeUpdate:
    """One attribute's upsert, typed by its key."""
    if name == ASSIGNEES.name:
        return ASSIGNEES.value_unset() if value is None else ASSIGNEES.value_set(list(value))  # type: ignore[call-overload]
    if name in (OVERDUE.name, LISTED.name):
        key = OVERDUE if name == OVERDUE.name else LISTED
        return key.value_set(bool(value))
    if name == DEADLINE_AT.name:
        return DEADLINE_AT.value_unset() if value is None else DEADLINE_AT.value_set(value)  # type: ignore[arg-type]
    text = STAGE if name == STAGE.name else WAITING_ON
    return text.value_unset() if value is None else text.value_set(str(value))


def static_summary(facts: ParcelFacts) -> str:
    return f"{facts.parcel_id} · {facts.name} · {facts.district} · planned {facts.planned_use}"


def current_details(state: ParcelState) -> str:
    blocking = state.blocking()
    waiting = ", ".join(r.value for r in state.waiting_on()) or "—"
    last = state.decisions[-1] if state.decisions else None
    lines = [
        f"**Stage:** {state.stage.value} ({state.status})",
        f"**Step:** {blocking.step.value if blocking else '—'} · **waiting on:** {waiting}",
        f"**Deadline:** {blocking.deadline.isoformat() if blocking else '—'}"
        + (" **(overdue)**" if blocking and blocking.overdue else ""),
        f"**Listed:** {'yes' if state.listed else 'no'} · **actions:** {state.seq}"
        f" · **run:** {state.runs}",
    ]
    if last:
        lines.append(f"**Last decision:** {last.rule} {last.outcome} ({last.citation})")
    return "\n\n".join(lines)
