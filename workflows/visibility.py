"""What ops see in the Temporal Web UI: search attributes, summary and current details.

No personal data goes here (search attributes are not encrypted): parcel code,
district, stage, role ids and dates only; the parcel name appears in the static
summary, which is the agency's public site name.
"""

from __future__ import annotations

from temporalio.common import (
    SearchAttributeKey,
    SearchAttributePair,
    SearchAttributeUpdate,
    TypedSearchAttributes,
)

from landflow.contracts import ParcelFacts, ParcelState

PARCEL_ID = SearchAttributeKey.for_keyword("ParcelId")
DISTRICT = SearchAttributeKey.for_keyword("District")
STAGE = SearchAttributeKey.for_keyword("Stage")
WAITING_ON = SearchAttributeKey.for_keyword("WaitingOn")
OVERDUE = SearchAttributeKey.for_bool("Overdue")
DEADLINE_AT = SearchAttributeKey.for_datetime("DeadlineAt")
LISTED = SearchAttributeKey.for_bool("Listed")

ALL_KEYS = (PARCEL_ID, DISTRICT, STAGE, WAITING_ON, OVERDUE, DEADLINE_AT, LISTED)


def cli_flags() -> list[str]:
    """`--search-attribute Name=Type` flags for `temporal server start-dev`."""
    kinds = {"KEYWORD": "Keyword", "BOOL": "Bool", "DATETIME": "Datetime"}
    return [f"{k.name}={kinds[k.indexed_value_type.name]}" for k in ALL_KEYS]


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


def search_attribute_updates(state: ParcelState) -> list[SearchAttributeUpdate]:
    return [
        STAGE.value_set(state.stage.value),
        WAITING_ON.value_set(state.waiting_on.value)
        if state.waiting_on
        else WAITING_ON.value_unset(),
        OVERDUE.value_set(state.overdue),
        DEADLINE_AT.value_set(state.deadline) if state.deadline else DEADLINE_AT.value_unset(),
        LISTED.value_set(state.listed),
    ]


def static_summary(facts: ParcelFacts) -> str:
    return f"{facts.parcel_id} · {facts.name} · {facts.district} · planned {facts.planned_use}"


def current_details(state: ParcelState) -> str:
    last = state.decisions[-1] if state.decisions else None
    lines = [
        f"**Stage:** {state.stage.value}",
        f"**Waiting on:** {state.waiting_on.value if state.waiting_on else '—'}",
        f"**Deadline:** {state.deadline.isoformat() if state.deadline else '—'}"
        + (" **(overdue)**" if state.overdue else ""),
        f"**Listed:** {'yes' if state.listed else 'no'}",
    ]
    if last:
        lines.append(f"**Last decision:** {last.rule} {last.outcome} ({last.citation})")
    return "\n\n".join(lines)
