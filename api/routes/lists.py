"""The published lists (BJ 18; Law 58): public, no token."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from api.deps import SessionDep
from api.schemas import ListEntry, PublicList
from landflow import registry

router = APIRouter(prefix="/lists", tags=["lists"])


@router.get("/{list_name}", response_model=PublicList)
def public_list(
    list_name: Literal["contaminated", "negative"], session: SessionDep, include_left: bool = False
) -> PublicList:
    """Parcels on the contaminated-parcel list or the development negative list."""
    rows = registry.list_entries(session, list_name=list_name, current=not include_left)
    return PublicList(list=list_name, entries=[ListEntry.of(r) for r in rows])
