"""The first procedure's search attributes and UI details, frozen with it."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

from workflows.legacy.contracts import ParcelState

STAGE = SearchAttributeKey.for_keyword("Stage")
WAITING_ON = SearchAttributeKey.for_keyword("WaitingOn")
OVERDUE = SearchAttributeKey.for_bool("Overdue")
DEADLINE_AT = SearchAttributeKey.for_datetime("DeadlineAt")
LISTED = SearchAttributeKey.for_bool("Listed")


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
