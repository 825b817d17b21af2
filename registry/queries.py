"""Reads of the registry: lists and inboxes with cursor paging and totals.

Cursors are opaque to clients (base64 of the last row's sort key), stable under inserts,
and cheap at any depth (a keyset, not an offset).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import and_, func, or_
from sqlalchemy.orm import aliased, load_only
from sqlmodel import Session, col, select

from registry.tables import (
    DecisionRow,
    DocumentRow,
    ListEntryRow,
    NoticeRow,
    ParcelRow,
    ReportRow,
    StatusRow,
    TaskRow,
)

T = TypeVar("T")


class BadCursor(ValueError):
    pass


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    total: int
    next_cursor: str | None


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in key])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("the cursor is not one this API gave out") from exc
    if not isinstance(key, list) or len(key) != size:
        raise BadCursor("the cursor is not one this API gave out")
    return key


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _instant(value: Any) -> datetime:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        raise BadCursor("the cursor is not one this API gave out") from None


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadCursor("the cursor is not one this API gave out")
    return value


def list_parcels(
    session: Session,
    *,
    stage: str | None = None,
    district: str | None = None,
    waiting_on: str | None = None,
    overdue: bool | None = None,
    status: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[ParcelRow]:
    """Current registrations, by parcel id."""
    where: list[Any] = [col(ParcelRow.current).is_(True)]
    if stage is not None:
        where.append(ParcelRow.stage == stage)
    if district is not None:
        where.append(ParcelRow.district == district)
    if status is not None:
        where.append(ParcelRow.status == status)
    if overdue is not None:
        where.append(ParcelRow.overdue == overdue)
    if waiting_on is not None:
        where.append(col(ParcelRow.waiting_on).contains(waiting_on))
    total = session.exec(select(func.count()).select_from(ParcelRow).where(*where)).one()
    query = select(ParcelRow).where(*where)
    if cursor:
        (after,) = decode_cursor(cursor, 1)
        query = query.where(col(ParcelRow.parcel_id) > str(after))
    rows = list(session.exec(query.order_by(col(ParcelRow.parcel_id)).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, total, encode_cursor([rows[-1].parcel_id]) if more else None)


def tasks_for(
    session: Session,
    *,
    role: str,
    district: str | None,
    party: str | None,
    stage: str | None = None,
    in_district: str | None = None,
    overdue: bool | None = None,
    limit: int = 100,
    cursor: str | None = None,
    by_stage: dict[str, int] | None = None,
) -> Page[tuple[TaskRow, ParcelRow]]:
    """A caller's inbox: open tasks owed by its role (in its district, for its party) on
    running parcels, oldest deadline first. The parcels carry their name and district
    only (an inbox shows no more of them). Given the counts per stage
    (`tasks_by_stage`), an unfiltered inbox takes its total from them."""
    where: list[Any] = [
        TaskRow.role == role,
        ParcelRow.status == "running",
        col(ParcelRow.current).is_(True),
    ]
    if district is not None:
        where.append(TaskRow.district == district)
    if party is not None:
        where.append(TaskRow.party == party)
    if stage is not None:
        where.append(TaskRow.stage == stage)
    if in_district is not None:
        where.append(ParcelRow.district == in_district)
    if overdue is not None:
        where.append(TaskRow.overdue == overdue)
    joined = (
        select(TaskRow, ParcelRow)
        .join(ParcelRow, col(ParcelRow.run_id) == TaskRow.run_id)
        .options(load_only(ParcelRow.run_id, ParcelRow.name, ParcelRow.district))  # type: ignore[arg-type]
    )
    unfiltered = stage is None and in_district is None and overdue is None
    if by_stage is not None and unfiltered:
        total = sum(by_stage.values())
    else:
        total = session.exec(
            select(func.count())
            .select_from(TaskRow)
            .join(ParcelRow, col(ParcelRow.run_id) == TaskRow.run_id)
            .where(*where)
        ).one()
    query = joined.where(*where)
    if cursor:
        deadline, row_id = decode_cursor(cursor, 2)
        at, after = _instant(deadline), _integer(row_id)
        query = query.where(
            or_(
                col(TaskRow.deadline) > at,
                and_(col(TaskRow.deadline) == at, col(TaskRow.id) > after),
            )
        )
    rows = list(
        session.exec(query.order_by(col(TaskRow.deadline), col(TaskRow.id)).limit(limit + 1))
    )
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor([rows[-1][0].deadline, rows[-1][0].id]) if more else None
    return Page([(t, p) for t, p in rows], total, next_cursor)


def tasks_by_stage(
    session: Session, *, role: str, district: str | None, party: str | None
) -> dict[str, int]:
    where: list[Any] = [
        TaskRow.role == role,
        ParcelRow.status == "running",
        col(ParcelRow.current).is_(True),
    ]
    if district is not None:
        where.append(TaskRow.district == district)
    if party is not None:
        where.append(TaskRow.party == party)
    rows = session.exec(
        select(TaskRow.stage, func.count())
        .join(ParcelRow, col(ParcelRow.run_id) == TaskRow.run_id)
        .where(*where)
        .group_by(TaskRow.stage)
    )
    return dict(rows.all())


def current_run(session: Session, *, parcel_id: str) -> ParcelRow | None:
    return session.exec(
        select(ParcelRow).where(ParcelRow.parcel_id == parcel_id, col(ParcelRow.current).is_(True))
    ).first()


def open_tasks(session: Session, *, run_id: str) -> list[TaskRow]:
    """The owners still owing an open task of the registration (the inbox's rows)."""
    return list(session.exec(select(TaskRow).where(TaskRow.run_id == run_id)))


def runs_of(session: Session, *, parcel_id: str) -> list[ParcelRow]:
    query = select(ParcelRow).where(ParcelRow.parcel_id == parcel_id)
    return list(session.exec(query.order_by(col(ParcelRow.started_at))))


def list_entries(
    session: Session,
    *,
    list_name: str,
    current: bool = True,
    district: str | None = None,
    search: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[tuple[ListEntryRow, ParcelRow | None]]:
    """A public list: its entries (still on it, or all with `current=False`) with the
    registration's disclosure fields."""
    where: list[Any] = [ListEntryRow.list_name == list_name]
    if current:
        where += [col(ListEntryRow.left_at).is_(None), ~_superseded()]
    if district is not None:
        where.append(ListEntryRow.district == district)
    if search:
        # literal text, case-insensitive on every database: % and _ are no wildcards here
        pattern = "%" + _escape_like(search.lower()) + "%"
        where.append(
            or_(
                func.lower(ListEntryRow.name).like(pattern, escape="\\"),
                func.lower(ListEntryRow.parcel_id).like(pattern, escape="\\"),
            )
        )
    total = session.exec(select(func.count()).select_from(ListEntryRow).where(*where)).one()
    query = (
        select(ListEntryRow, ParcelRow)
        .join(ParcelRow, col(ParcelRow.run_id) == ListEntryRow.run_id, isouter=True)
        .where(*where)
    )
    # Keyed by entry time and parcel id, not run id: anyone can decode a public cursor, and
    # no run id is public (two runs of one id never enter a list at the same instant).
    if cursor:
        entered, parcel_id = decode_cursor(cursor, 2)
        at = _instant(entered)
        query = query.where(
            or_(
                col(ListEntryRow.entered_at) > at,
                and_(
                    col(ListEntryRow.entered_at) == at,
                    col(ListEntryRow.parcel_id) > str(parcel_id),
                ),
            )
        )
    order = (col(ListEntryRow.entered_at), col(ListEntryRow.parcel_id))
    rows = list(session.exec(query.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor([rows[-1][0].entered_at, rows[-1][0].parcel_id]) if more else None
    return Page([(e, p) for e, p in rows], total, next_cursor)


def _superseded() -> Any:
    """A later registration of the same parcel entered the same list: a restart after an
    abnormal end, listed again. Its entry is the one that counts (once on the list)."""
    later = aliased(ListEntryRow)
    # Selecting a key column (not *) lets the probe stay in ix_list_entries_latest.
    return (
        select(later.parcel_id)
        .where(
            col(later.list_name) == col(ListEntryRow.list_name),
            col(later.parcel_id) == col(ListEntryRow.parcel_id),
            col(later.entered_at) > col(ListEntryRow.entered_at),
        )
        .exists()
    )


def list_entry(session: Session, *, list_name: str, run_id: str) -> ListEntryRow | None:
    """The registration's entry on the list; for a restarted one not on it (yet), the entry
    an earlier run that ended abnormally left there: only a review takes a parcel off."""
    entry = session.get(ListEntryRow, (list_name, run_id))
    parcel = session.get(ParcelRow, run_id) if entry is None else None
    if parcel is None:
        return entry
    standing = select(ListEntryRow).where(
        ListEntryRow.list_name == list_name,
        ListEntryRow.parcel_id == parcel.parcel_id,
        col(ListEntryRow.left_at).is_(None),
        ~_superseded(),
    )
    return session.exec(standing).first()


def decisions_for(session: Session, *, run_id: str) -> list[DecisionRow]:
    query = select(DecisionRow).where(DecisionRow.run_id == run_id)
    return list(
        session.exec(query.order_by(col(DecisionRow.evaluated_at), col(DecisionRow.decision_id)))
    )


def notices_for(session: Session, *, run_id: str) -> list[NoticeRow]:
    query = select(NoticeRow).where(NoticeRow.run_id == run_id)
    return list(session.exec(query.order_by(col(NoticeRow.at), col(NoticeRow.key))))


def documents_for(session: Session, *, parcel_id: str) -> list[DocumentRow]:
    query = select(DocumentRow).where(DocumentRow.parcel_id == parcel_id)
    return list(
        session.exec(query.order_by(col(DocumentRow.uploaded_at), col(DocumentRow.document_id)))
    )


def document(session: Session, *, document_id: str) -> DocumentRow | None:
    return session.get(DocumentRow, document_id)


def count_by_stage(session: Session) -> dict[str, int]:
    rows = session.exec(
        select(ParcelRow.stage, func.count())
        .where(col(ParcelRow.current).is_(True))
        .group_by(ParcelRow.stage)
    )
    return dict(rows.all())


def count_runs(session: Session) -> int:
    return session.exec(select(func.count()).select_from(ParcelRow)).one()


def status(session: Session, *, key: str) -> StatusRow | None:
    return session.get(StatusRow, key)


def get_report(session: Session, *, year: int, scope: str) -> ReportRow | None:
    return session.get(ReportRow, (year, scope))
