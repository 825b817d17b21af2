"""Documents: upload to a parcel, list, download (ETag, ranges), and the public ones.

The bytes go to the content-addressed store (documents/), the metadata to the registry's
`documents` table and beside the blob (`meta/<parcel>/<document_id>.json`), so the
registry rebuild finds them again. The workflow history cites id, kind and SHA-256.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Header, UploadFile, status
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlmodel import Session
from starlette.datastructures import UploadFile as FormFile

from api.deps import Caller, PolicyDep, SessionDep, SettingsDep, StoreDep, TemporalDep
from api.errors import ApiError
from api.routes.parcels import ParcelId, parcel_exists, parcel_state, read_then_release
from api.schemas import DocumentList, DocumentOut, error_responses
from documents import names, sniff
from documents.store import DocumentStore, Empty, NotStored, TooLarge
from landflow.documents import SHA256_PATTERN, DocumentKind, document_id
from landflow.messages import Actor
from landflow.policy import Policy
from landflow.state import ParcelState
from landflow.vocabulary import PARTY_ROLES, Role
from registry import queries, writes
from registry.tables import DocumentRow, ParcelRow
from rules import lab_results
from workflows.gate import matches

router = APIRouter(tags=["documents"])
ERRORS = error_responses(401, 403, 404, 409, 413, 415, 416, 422, 503)
BUREAUS = frozenset(
    {Role.city_epb, Role.planning_land, Role.reserve_agency, Role.auditor, Role.ops}
)


def may_upload(state: ParcelState, caller: Actor) -> bool:
    """A caller who may act on the parcel now, or has acted on it (issue: documents)."""
    if caller.role == Role.reserve_agency:
        return True  # it registered the parcel
    if any(matches(caller, a) for t in state.tasks for a in t.assignees):
        return True
    return any(
        a.role == caller.role
        and (a.district is None or a.district == caller.district)
        and (a.role not in PARTY_ROLES or a.party == caller.party)
        for a in state.actions
    )


def registry_admits_upload(session: Session, parcel_id: str, caller: Actor) -> tuple[bool, bool]:
    """What the registry already shows, sparing the engine a round trip for the common
    uploads: whether the parcel is registered, and whether the caller owes one of its open
    steps. Anything else asks the workflow (`may_upload` on its state)."""
    registered = queries.current_run(session, parcel_id=parcel_id)
    if registered is None:
        return False, False
    owes = any(
        row.role == caller.role.value
        and (row.district is None or row.district == caller.district)
        and (caller.role not in PARTY_ROLES or row.party == caller.party)
        for row in queries.open_tasks(session, run_id=registered.run_id)
    )
    return True, owes


def may_read(row: ParcelRow, caller: Actor) -> bool:
    """The parcel's parties, the bureaus (district ones of its district) and auditors."""
    if caller.role in BUREAUS:
        return True
    if caller.role in (Role.district_epb, Role.district_government):
        return caller.district == row.district
    parties = row.parties or {}
    bound = {
        Role.land_user: (parties.get("land_user") or {}).get("id"),
        Role.responsible_party: (parties.get("responsible") or {}).get("id"),
        Role.third_party_evaluator: (parties.get("evaluator") or {}).get("id"),
    }
    own = bound.get(caller.role)
    if caller.role == Role.land_user and parties.get("responsible_role") == "land_user":
        own = own or (parties.get("responsible") or {}).get("id")
    return own is not None and own == caller.party


@router.post(
    "/parcels/{parcel_id}/documents",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentOut,
    responses={
        **ERRORS,
        200: {"model": DocumentOut, "description": "the same bytes, uploaded before"},
    },
)
async def upload(
    parcel_id: ParcelId,
    caller: Caller,
    client: TemporalDep,
    settings: SettingsDep,
    session: SessionDep,
    store: StoreDep,
    file: Annotated[
        UploadFile, File(description="the document (PDF, OFD, PNG, JPEG, DOCX, XLSX, CSV)")
    ],
    kind: Annotated[DocumentKind, Form()],
    title: Annotated[str | None, Form(max_length=500)] = None,
) -> Any:
    """Upload a document to a parcel; the same bytes uploaded twice are one document."""
    registered, owes = await read_then_release(
        session, partial(registry_admits_upload, session, parcel_id, caller)
    )
    if caller.role == Role.reserve_agency:  # it registered the parcel: may upload
        if not registered:  # not projected yet, or never registered: the engine says
            await parcel_exists(client, settings, parcel_id)
    elif not owes and not may_upload((await parcel_state(client, settings, parcel_id))[0], caller):
        raise ApiError(
            403,
            "WrongParty",
            f"{caller.role.value} neither acts nor has acted on parcel {parcel_id}",
        )
    kept, created = await save_document(
        parcel_id=parcel_id,
        file=file,
        kind=kind,
        title=title,
        caller=caller,
        session=session,
        store=store,
        limit=settings.max_document_bytes,
    )
    meta = DocumentOut.of(kept).model_dump(mode="json")
    code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return JSONResponse(meta, status_code=code)


async def save_document(
    *,
    parcel_id: str,
    file: FormFile,
    kind: DocumentKind,
    title: str | None,
    caller: Actor,
    session: Session,
    store: DocumentStore,
    limit: int,
) -> tuple[DocumentRow, bool]:
    """Sniff, store and record an upload the caller may make (the API's upload route and
    the workbench's forms): the row kept, and whether it is new (the same bytes uploaded
    before are one document)."""
    filename = names.sanitize_filename(file.filename or "document")
    stored = await asyncio.to_thread(store_file, store, file, filename, kind, limit)
    row = DocumentRow(
        document_id=document_id(parcel_id, stored["sha256"]),
        parcel_id=parcel_id,
        sha256=stored["sha256"],
        kind=kind.value,
        filename=filename,
        media_type=stored["media_type"],
        size=stored["size"],
        title=title,
        uploaded_by=f"{caller.role.value}:{caller.subject}",
        uploaded_role=caller.role.value,
        uploaded_party=caller.party,
        uploaded_at=datetime.now(UTC),
    )
    kept = await asyncio.to_thread(writes.add_document, session, row=row)
    if kept.kind != row.kind:  # one document per parcel and bytes: its kind stays
        raise ApiError(
            409,
            "DocumentKindConflict",
            f"these bytes are already document {kept.document_id} of kind {kept.kind} on "
            f"parcel {parcel_id}; cite it as {kept.kind}, or upload the {kind.value} file",
            [
                {
                    "field": "kind",
                    "reason": f"already uploaded as {kept.kind}",
                    "kind": kept.kind,
                    "document_id": kept.document_id,
                }
            ],
        )
    meta = DocumentOut.of(kept).model_dump(mode="json")
    await asyncio.to_thread(
        store.put_meta, f"meta/{parcel_id}/{kept.document_id}.json", json.dumps(meta).encode()
    )
    return kept, kept.uploaded_at == row.uploaded_at


def store_file(
    store: DocumentStore, file: FormFile, filename: str, kind: DocumentKind, limit: int
) -> dict[str, Any]:
    """Sniff, check and store; an interrupted or refused upload leaves nothing behind."""
    source = file.file
    source.seek(0, 2)
    size = source.tell()
    source.seek(0)
    if size == 0:
        raise ApiError(
            422, "InvalidBody", "the file is empty", [{"field": "file", "reason": "zero bytes"}]
        )
    if size > limit:
        raise ApiError(
            413,
            "TooLarge",
            f"the file is {size} bytes; the limit is {limit} (LANDFLOW_MAX_DOCUMENT_BYTES)",
        )
    media_type = sniff.sniff_file(source, filename)
    try:
        sniff.check_declared(media_type, file.content_type, filename)
    except sniff.MediaTypeMismatch as exc:
        raise ApiError(
            415, "UnsupportedMediaType", exc.reason, [{"field": "file", "reason": exc.reason}]
        ) from None
    if kind == DocumentKind.lab_results:
        _check_lab_file(source, filename, media_type)
    source.seek(0)
    try:
        blob = store.put(source, max_bytes=limit)
    except TooLarge:
        raise ApiError(413, "TooLarge", f"the file exceeds {limit} bytes") from None
    except Empty:
        raise ApiError(
            422, "InvalidBody", "the file is empty", [{"field": "file", "reason": "zero bytes"}]
        ) from None
    return {"sha256": blob.sha256, "size": blob.size, "media_type": media_type}


def _check_lab_file(source: Any, filename: str, media_type: str | None) -> None:
    """A lab spreadsheet is checked whole at upload: every bad row at once (422)."""
    if media_type not in (sniff.XLSX, sniff.CSV):
        reason = "a lab_results document is an XLSX or CSV spreadsheet"
        raise ApiError(415, "UnsupportedMediaType", reason, [{"field": "file", "reason": reason}])
    source.seek(0)
    try:
        lab_results.parse_lab_results(source.read(), filename=filename, media_type=media_type)
    except lab_results.LabResultsError as exc:
        fields = [
            {
                "field": f"file.row[{p['row']}].{p['column'] or 'file'}",
                "row": p["row"],
                "column": p["column"],
                "value": p["value"],
                "reason": p["reason"],
            }
            for p in exc.problems
        ]
        raise ApiError(422, "InvalidBody", exc.message, fields) from None


def readable_row(session: SessionDep, parcel_id: str, caller: Actor) -> ParcelRow:
    row = queries.current_run(session, parcel_id=parcel_id)
    if row is None:
        raise ApiError(404, "NotFound", f"parcel {parcel_id} not found")
    if not may_read(row, caller):
        raise ApiError(
            403, "WrongParty", f"{caller.role.value} may not read parcel {parcel_id}'s documents"
        )
    return row


@router.get("/parcels/{parcel_id}/documents", response_model=DocumentList, responses=ERRORS)
def list_documents(parcel_id: ParcelId, caller: Caller, session: SessionDep) -> DocumentList:
    readable_row(session, parcel_id, caller)
    rows = queries.documents_for(session, parcel_id=parcel_id)
    return DocumentList(parcel_id=parcel_id, documents=[DocumentOut.of(r) for r in rows])


@router.get(
    "/parcels/{parcel_id}/documents/{document_id}",
    responses={
        **ERRORS,
        200: {"content": {"application/octet-stream": {}}},
        206: {"description": "a range"},
    },
)
def download(
    parcel_id: ParcelId,
    document_id: str,
    caller: Caller,
    session: SessionDep,
    store: StoreDep,
    range_: Annotated[str | None, Header(alias="range", max_length=100)] = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """The document's bytes: Content-Disposition, ETag (its SHA-256), byte ranges."""
    readable_row(session, parcel_id, caller)
    return serve_document(session, store, parcel_id, document_id, range_, if_none_match)


@router.get(
    "/public/parcels/{parcel_id}/documents/{sha256}",
    responses={**error_responses(404, 416), 200: {"content": {"application/octet-stream": {}}}},
)
def public_download(
    parcel_id: ParcelId,
    sha256: str,
    session: SessionDep,
    store: StoreDep,
    policy: PolicyDep,
    range_: Annotated[str | None, Header(alias="range", max_length=100)] = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Documents of public kinds (policy `public_document_kinds`), with no token, named by
    their SHA-256 and sent under their kind's name (the public learns no uploader's file
    name and no internal id)."""
    row = public_document(session, policy, parcel_id, sha256)
    return serve_document(
        session, store, parcel_id, row.document_id, range_, if_none_match, public_filename(row)
    )


def public_document(session: Session, policy: Policy, parcel_id: str, sha256: str) -> DocumentRow:
    """The parcel's document of a public kind with these bytes (one per parcel and digest)."""
    row = None
    if re.fullmatch(SHA256_PATTERN, sha256):
        row = queries.document(session, document_id=document_id(parcel_id, sha256))
    if row is None or row.kind not in {k.value for k in policy.public_document_kinds}:
        raise ApiError(404, "NotFound", f"no public document {sha256[:64]} on parcel {parcel_id}")
    return row


def public_filename(row: DocumentRow) -> str:
    """A neutral name for a public download: `<kind>.<ext>` (the type's usual extension)."""
    extension = min(sniff.EXTENSIONS.get(row.media_type, frozenset({""})), key=len)
    return f"{row.kind}{extension}"


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def serve_document(
    session: SessionDep,
    store: DocumentStore,
    parcel_id: str,
    document_id: str,
    range_: str | None,
    if_none_match: str | None,
    filename: str | None = None,
) -> Response:
    """The bytes of a document of the parcel; `filename` replaces the uploader's name in
    Content-Disposition (the public downloads)."""
    row = queries.document(session, document_id=document_id)
    if row is None or row.parcel_id != parcel_id:
        raise ApiError(404, "NotFound", f"document {document_id} not found on parcel {parcel_id}")
    etag = f'"{row.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": names.content_disposition(filename or row.filename),
        "Cache-Control": "private, max-age=0, must-revalidate",
    }
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    try:
        size = store.size(row.sha256)
        if range_:
            start, end = _range(range_, size)
            body = store.read_range(row.sha256, start, end)
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            return Response(body, status_code=206, media_type=row.media_type, headers=headers)
        stream = store.open(row.sha256)
    except NotStored:
        raise ApiError(
            404,
            "NotFound",
            f"document {document_id} is missing from the store (see landflow audit verify)",
        ) from None
    headers["Content-Length"] = str(size)
    return StreamingResponse(_chunks(stream), media_type=row.media_type, headers=headers)


def _range(header: str, size: int) -> tuple[int, int]:
    found = _RANGE.match(header.strip())
    if not found or found.groups() == ("", ""):
        raise ApiError(
            416,
            "RangeNotSatisfiable",
            f"one byte range like bytes=0-99 (the document has {size} bytes)",
        )
    first, last = found.groups()
    if first == "":
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last)) if last else size - 1
    if start >= size or start > end:
        raise ApiError(
            416,
            "RangeNotSatisfiable",
            f"the document has {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, end


def _chunks(stream: Any, size: int = 1 << 16) -> Any:
    with stream:
        while chunk := stream.read(size):
            yield chunk
