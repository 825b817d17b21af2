"""Each caller's inbox: the open tasks its role owes (in its district, for its party)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import Caller, SessionDep
from api.routes.parcels import paged
from api.schemas import TaskOut, TaskPage, error_responses
from landflow.vocabulary import Stage
from registry import queries

router = APIRouter(tags=["tasks"])


@router.get("/tasks", response_model=TaskPage, responses=error_responses(401, 422))
def my_tasks(
    caller: Caller,
    session: SessionDep,
    stage: Stage | None = None,
    district: Annotated[
        str | None, Query(max_length=50, description="the parcel's district")
    ] = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> TaskPage:
    """Open tasks the caller owes on running parcels, oldest deadline first, with the
    total, the counts per stage, and a cursor for the next page."""
    role, district_of, party = caller.role.value, caller.district, caller.party
    by_stage = queries.tasks_by_stage(session, role=role, district=district_of, party=party)
    page = paged(
        lambda: queries.tasks_for(
            session,
            role=role,
            district=district_of,
            party=party,
            stage=stage.value if stage else None,
            in_district=district,
            overdue=overdue,
            limit=limit,
            cursor=cursor,
            by_stage=by_stage,
        )
    )
    now = datetime.now(UTC)
    return TaskPage(
        tasks=[TaskOut.of(task, parcel, now) for task, parcel in page.items],
        count=len(page.items),
        total=page.total,
        next_cursor=page.next_cursor,
        by_stage=by_stage,
    )
