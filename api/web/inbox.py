"""我的待办: the caller's open steps (its role, its district, its party), oldest deadline
first, with filters, paging and the counts per stage; htmx refreshes the table."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from api.deps import SessionDep
from api.schemas import TaskOut
from api.web.pages import PAGE_SIZE, page, render, signed_in
from landflow.vocabulary import Stage, districts
from registry import queries

router = APIRouter()


def _flag(value: str | None) -> bool | None:
    return {"true": True, "false": False}.get(value or "")


@router.get("/inbox")
@page
async def inbox(
    request: Request,
    db: SessionDep,
    stage: str = "",
    district: str = "",
    overdue: str = "",
    cursor: str = "",
    partial: str = "",
) -> Response:
    """The caller's open steps, oldest deadline first, with the counts per stage."""
    who = signed_in(request)
    actor = who.actor
    scope: dict[str, Any] = {
        "role": actor.role.value,
        "district": actor.district,
        "party": actor.party,
    }
    chosen_stage = stage if stage in {s.value for s in Stage} else None
    chosen_district = district if district in districts() else None

    def fetch() -> tuple[Any, dict[str, int]]:
        where: dict[str, Any] = {
            **scope,
            "stage": chosen_stage,
            "in_district": chosen_district,
            "overdue": _flag(overdue),
            "limit": PAGE_SIZE,
        }
        by_stage = queries.tasks_by_stage(db, **scope)
        try:
            found = queries.tasks_for(db, **where, cursor=cursor or None, by_stage=by_stage)
        except queries.BadCursor:  # a stale link: its first page
            found = queries.tasks_for(db, **where, by_stage=by_stage)
        return found, by_stage

    # The registry is read off the event loop, which keeps serving other requests.
    found, by_stage = await asyncio.to_thread(fetch)
    now = datetime.now(UTC)
    tasks = [TaskOut.of(task, parcel, now) for task, parcel in found.items]
    filters = {"stage": chosen_stage or "", "district": chosen_district or "", "overdue": overdue}
    kept = {k: v for k, v in filters.items() if v}
    context: dict[str, Any] = {
        "tasks": tasks,
        "total": found.total,
        "by_stage": by_stage,
        "filters": filters,
        "query": urlencode(kept),
        "next_url": (
            f"/ui/inbox?{urlencode({**kept, 'cursor': found.next_cursor})}"
            if found.next_cursor
            else None
        ),
        "paged": bool(cursor),
        "stages": list(Stage),
        "districts": [actor.district] if actor.district else list(districts()),
    }
    template = "_inbox_table.html" if partial else "inbox.html"
    return render(request, template, who=who, **context)
