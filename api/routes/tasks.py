"""Each bureau's inbox."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import Caller, SessionDep
from api.schemas import ParcelPage, ParcelSummary
from landflow import registry

router = APIRouter(tags=["tasks"])


@router.get("/tasks", response_model=ParcelPage)
def my_tasks(caller: Caller, session: SessionDep) -> ParcelPage:
    """Parcels waiting on the caller's role (and district), oldest deadline first."""
    rows = registry.tasks_for(session, role=caller.role.value, district=caller.district)
    return ParcelPage(parcels=[ParcelSummary.of(r) for r in rows], count=len(rows))
