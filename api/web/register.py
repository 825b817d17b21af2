"""The public register (no sign-in): the three published lists with search, district
filter and paging, a parcel's public profile with the disclosure fields of DOMAIN.md,
its outline (and map tiles where configured) and its public documents. No personal
data, no internal ids beyond the parcel id."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response
from sqlmodel import Session, col, select

from api.deps import PolicyDep, SessionDep, StoreDep, get_temporal
from api.errors import ApiError
from api.routes import documents as document_routes
from api.routes.parcels import parcel_state
from api.schemas import PublicDocumentOut, public_responsible
from api.web import diagram, explain, i18n
from api.web import session as web_session
from api.web.pages import PAGE_SIZE, PARCEL_ID, locale_of, page, render
from landflow.policy import Policy
from landflow.settings import Settings
from landflow.vocabulary import districts
from registry import queries
from registry.tables import LISTS, DecisionRow, DocumentRow, ParcelRow, aware

router = APIRouter()
LIST_NAMES = LISTS  # suspected, contaminated (risk control and remediation), negative


@router.get("/register")
@page
async def register(
    request: Request,
    db: SessionDep,
    list_name: Annotated[str, Query(alias="list", max_length=20)] = "contaminated",
    q: str = "",
    district: str = "",
    include_left: str = "",
    cursor: str = "",
) -> Response:
    """The three published lists, with search, district filter and paging; no sign-in."""
    chosen = list_name if list_name in LIST_NAMES else "contaminated"
    search = q.strip()[:100] or None
    chosen_district = district if district in districts() else None
    current = include_left != "true"
    arguments: dict[str, Any] = {
        "list_name": chosen,
        "current": current,
        "district": chosen_district,
        "search": search,
        "limit": PAGE_SIZE,
    }

    def fetch() -> tuple[Any, dict[str, int], list[DecisionRow]]:
        try:
            found = queries.list_entries(db, **arguments, cursor=cursor or None)
        except queries.BadCursor:
            found = queries.list_entries(db, **arguments)
        made = _sentence_decisions(db, [e.run_id for e, _ in found.items])
        counts = {
            name: (
                found.total
                if name == chosen
                else queries.list_entries(db, list_name=name, current=True, limit=1).total
            )
            for name in LIST_NAMES
        }
        return found, counts, made

    found, counts, made = await asyncio.to_thread(fetch)  # off the event loop, as the inbox
    with i18n.using(locale_of(request)):
        say = explain.Sentences(request.app.state.rules, made)
        entries = [_public_entry(entry, row, say) for entry, row in found.items]
    kept = {
        k: v
        for k, v in {
            "list": chosen,
            "q": search or "",
            "district": chosen_district or "",
            "include_left": "" if current else "true",
        }.items()
        if v
    }
    return render(
        request,
        "register.html",
        who=web_session.current(request),
        public=True,
        entries=entries,
        total=found.total,
        counts=counts,
        chosen=chosen,
        lists=LIST_NAMES,
        filters={"q": search or "", "district": chosen_district or "", "include_left": not current},
        districts=districts(),
        next_url=(
            f"/ui/register?{urlencode({**kept, 'cursor': found.next_cursor})}"
            if found.next_cursor
            else None
        ),
    )


def _sentence_decisions(db: Session, run_ids: list[str]) -> list[DecisionRow]:
    """The decisions the register's recorded sentences come from (the investigation
    conclusion is R5's explanation, a listing reason R11's), oldest first."""
    if not run_ids:
        return []
    return list(
        db.exec(
            select(DecisionRow)
            .where(col(DecisionRow.run_id).in_(run_ids), col(DecisionRow.rule).in_(("R5", "R11")))
            .order_by(col(DecisionRow.evaluated_at))
        )
    )


def _public_entry(entry: Any, row: ParcelRow | None, say: explain.Sentences) -> dict[str, Any]:
    """What a list shows of an entry: the disclosure fields, no party ids, no run ids."""
    disclosure = (row.disclosure if row else None) or {}
    return {
        "parcel_id": entry.parcel_id,
        "name": entry.name,
        "district": entry.district,
        "area_m2": row.area_m2 if row else None,
        "entered_at": aware(entry.entered_at),
        "left_at": aware(entry.left_at),
        "reason": say(entry.reason),
        "citation": entry.citation,
        "responsible_party": public_responsible(row) if row else None,
        "investigation_conclusion": say(disclosure.get("investigation_conclusion")),
        "pollutants": disclosure.get("pollutants_over_screening") or [],
        "evaluation_result": disclosure.get("evaluation_result"),
        "evaluation_date": disclosure.get("evaluation_date"),
    }


_BOUNDARIES: dict[str, dict[str, Any] | None] = {}  # run id → boundary (facts never change)
BOUNDARY_CACHE = 2048


async def _boundary(request: Request, row: ParcelRow) -> dict[str, Any] | None:
    """The outline is a fact of the registration, read once from its workflow (the
    registry keeps the centre point only); a down engine leaves the point."""
    if row.run_id in _BOUNDARIES:
        return _BOUNDARIES[row.run_id]
    try:
        client = await get_temporal(request)
        state, _ = await parcel_state(client, request.app.state.settings, row.parcel_id)
        found = state.facts.get("boundary") if state.run_id == row.run_id else None
    except ApiError as error:
        if error.status != 404:
            return None  # the engine is busy or down: the point now, the outline later
        found = None  # its history is gone (retention): the registry's point is all there is
    if len(_BOUNDARIES) >= BOUNDARY_CACHE:
        _BOUNDARIES.pop(next(iter(_BOUNDARIES)))
    _BOUNDARIES[row.run_id] = found
    return found


def _public_documents(db: Session, policy: Policy, parcel_id: str) -> list[DocumentRow]:
    public = {k.value for k in policy.public_document_kinds}
    return [d for d in queries.documents_for(db, parcel_id=parcel_id) if d.kind in public]


@router.get("/register/{parcel_id}")
@page
async def public_profile(
    request: Request, parcel_id: str, db: SessionDep, policy: PolicyDep
) -> Response:
    """What the public may know of a parcel (BJ 30; Law 58, 66): no personal data."""
    row = queries.current_run(db, parcel_id=parcel_id) if PARCEL_ID.match(parcel_id) else None
    if row is None:
        raise ApiError(404, "NotFound", f"parcel {parcel_id[:64]} not found")
    listed = [
        (name, entry)
        for name in LIST_NAMES
        if (entry := queries.list_entry(db, list_name=name, run_id=row.run_id)) is not None
    ]
    made = _sentence_decisions(db, [row.run_id])
    boundary = await _boundary(request, row)
    settings: Settings = request.app.state.settings
    with i18n.using(locale_of(request)):
        say = explain.Sentences(request.app.state.rules, made)
        entries = [(name, _public_entry(entry, row, say)) for name, entry in listed]
        conclusion = say((row.disclosure or {}).get("investigation_conclusion"))
        outline = diagram.outline(
            boundary,
            row.location,
            tile_url=settings.tile_url,
            title=i18n.gettext("Parcel outline"),
        )
    return render(
        request,
        "profile.html",
        who=web_session.current(request),
        public=True,
        row=row,
        responsible=public_responsible(row),
        disclosure=row.disclosure or {},
        conclusion=conclusion,
        entries=entries,
        documents=[PublicDocumentOut.of(d) for d in _public_documents(db, policy, parcel_id)],
        outline=outline,
        tiles=bool(settings.tile_url),
        tile_host=urlsplit(settings.tile_url).netloc if settings.tile_url else "",
    )


@router.get("/register/{parcel_id}/documents/{sha256}")
@page
async def public_document(
    request: Request,
    parcel_id: str,
    sha256: str,
    db: SessionDep,
    store: StoreDep,
    policy: PolicyDep,
    range_: Annotated[str | None, Header(alias="range", max_length=100)] = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """A public document, named by its SHA-256 (the register shows no internal ids), under
    a neutral name (`<kind>.<ext>`), never the uploader's file name."""
    found = document_routes.public_document(db, policy, parcel_id, sha256)
    return document_routes.serve_document(
        db,
        store,
        parcel_id,
        found.document_id,
        range_,
        if_none_match,
        filename=document_routes.public_filename(found),
    )
