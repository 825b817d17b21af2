"""The published lists and the public parcel profile (BJ 16, 18, 30; Law 58, 61, 66): no token."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from api.deps import PolicyDep, SessionDep
from api.errors import ApiError
from api.routes.parcels import ParcelId, paged
from api.schemas import (
    ListEntryOut,
    PublicDocumentOut,
    PublicList,
    PublicProfile,
    SupplyCheck,
    error_responses,
    public_responsible,
)
from registry import queries
from registry.tables import LISTS, ParcelRow
from rules import gb_standards

router = APIRouter(tags=["public"])
ListName = Literal["suspected", "contaminated", "negative"]


@router.get("/lists/{list_name}", response_model=PublicList, responses=error_responses(422))
def public_list(
    list_name: ListName,
    session: SessionDep,
    include_left: bool = False,
    district: Annotated[str | None, Query(max_length=50)] = None,
    q: Annotated[
        str | None, Query(max_length=100, description="search in name or parcel id")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PublicList:
    """The suspected-parcel list (BJ 16, 18), the risk-control-and-remediation list
    (Law 58, 61, 66) or the development negative list (BJ 18), with the disclosure fields."""
    page = paged(
        lambda: queries.list_entries(
            session,
            list_name=list_name,
            current=not include_left,
            district=district,
            search=q,
            limit=limit,
            cursor=cursor,
        )
    )
    return PublicList(
        list=list_name,
        entries=[ListEntryOut.of(e, p) for e, p in page.items],
        count=len(page.items),
        total=page.total,
        next_cursor=page.next_cursor,
    )


def _current(session: SessionDep, parcel_id: str) -> ParcelRow:
    row = queries.current_run(session, parcel_id=parcel_id)
    if row is None:
        raise ApiError(404, "NotFound", f"parcel {parcel_id} not found")
    return row


SENSITIVE = frozenset({"R", "A", "A33", "A5", "A6"})  # Law 59 ¶2, 61 ¶2


@router.get(
    "/lists/negative/{parcel_id}", response_model=SupplyCheck, responses=error_responses(404, 422)
)
def supply_check(
    parcel_id: ParcelId,
    session: SessionDep,
    use: Annotated[str, Query(min_length=1, max_length=20, description="GB 50137 code or alias")],
) -> SupplyCheck:
    """May the parcel be supplied or used for `use` now?"""
    try:
        code = gb_standards.normalize_planned_use(use)
    except ValueError as exc:
        raise ApiError(
            422, "InvalidRequest", str(exc), [{"field": "use", "reason": str(exc)}]
        ) from None
    row = _current(session, parcel_id)
    allowed, reason, citation = _supply(row, code)
    return SupplyCheck(
        parcel_id=parcel_id, use=code, allowed=allowed, reason=reason, citation=citation
    )


def _supply(row: ParcelRow, code: str) -> tuple[bool, str, str]:
    if row.listed:
        if code in SENSITIVE:
            return (
                False,
                "listed parcels may not be used for housing or public services",
                "Law 61 ¶2",
            )
        return (
            False,
            "no construction unrelated to risk control or remediation may start",
            "Law 66 ¶3",
        )
    if row.status != "released":
        return False, f"the procedure has not released the parcel (stage {row.stage})", "BJ 15, 20"
    released_for = gb_standards.normalize_planned_use(row.planned_use)
    released_class = gb_standards.land_class(released_for)
    if gb_standards.land_class(code) < released_class:
        return (
            False,
            f"released for {released_for} (GB 36600 class {released_class}); "
            f"{code} is class 1 and needs an investigation first",
            "Law 59 ¶2; GB 36600 4.1",
        )
    return (
        True,
        f"released for {released_for}; {code} is within its land class",
        "Law 66; BJ 15, 20",
    )


@router.get(
    "/public/parcels/{parcel_id}", response_model=PublicProfile, responses=error_responses(404, 422)
)
def public_profile(
    parcel_id: Annotated[str, Path(min_length=1, max_length=64)],
    session: SessionDep,
    policy: PolicyDep,
) -> PublicProfile:
    """What the public may know of a parcel: location, area, district, responsible party,
    investigation conclusion and pollutants over screening values, evaluation result and
    date, list entries, and documents of public kinds (BJ 30; Law 58, 66). No personal data."""
    row = _current(session, parcel_id)
    entries = [
        (entry, row)
        for name in LISTS
        if (entry := queries.list_entry(session, list_name=name, run_id=row.run_id)) is not None
    ]
    public = {k.value for k in policy.public_document_kinds}
    documents = [
        PublicDocumentOut.of(d)
        for d in queries.documents_for(session, parcel_id=parcel_id)
        if d.kind in public
    ]
    return PublicProfile(
        parcel_id=row.parcel_id,
        name=row.name,
        district=row.district,
        area_m2=row.area_m2,
        location=row.location,
        stage=row.stage,
        status=row.status,
        listed=row.listed,
        responsible_party=public_responsible(row),
        disclosure=row.disclosure or {},
        lists=[ListEntryOut.of(e, p) for e, p in entries],
        documents=documents,
    )
