"""Writes to the registry: activities and the rebuild call these, nothing else.

Every write is idempotent and keyed by registration (`run_id`): a retried activity
changes nothing, and a late write of an older state loses to a newer one (the
workflow numbers its projections). `force=True` is the rebuild's: the engine's truth
replaces whatever the rows say, hand edits included.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import (
    JSON,
    Column,
    Connection,
    Insert,
    Table,
    Update,
    bindparam,
    delete,
    insert,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from landflow.decisions import Decision
from landflow.messages import ListChange, Notice, ParcelProjection
from landflow.reports import AnnualReport
from registry.tables import (
    DecisionRow,
    DocumentRow,
    ListEntryRow,
    NoticeRow,
    ParcelRow,
    ReportRow,
    StatusRow,
    TaskBase,
    TaskRow,
    aware,
    utc,
)


def stored(value: Any, column: Column[Any]) -> Any:
    """A message's field as its column of the same name keeps it: JSON columns as JSON,
    instants in UTC, enums by value, a list of them comma-separated (`waiting_on`)."""
    if isinstance(column.type, JSON):
        return to_jsonable_python(value)
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list):
        return ",".join(stored(v, column) for v in value)
    return value


def parcel_values(p: ParcelProjection) -> dict[str, Any]:
    """The parcel row's columns from the projection's fields of the same names (the
    registration's key and `current` are the writer's; tests/unit/registry/
    test_parcel_family.py keeps the two field sets and their types equal)."""
    return {c.name: stored(getattr(p, c.name), c) for c in _PARCEL_VALUES}


def _parcel_update(newer_only: bool) -> Update:
    """UPDATE of a run's parcel row, built once with bound parameters: a statement with
    its values inlined was built, cache-keyed and compiled again for every projection
    (most of a projection's CPU, bench/PROFILE.md)."""
    parcels = ParcelRow.__table__  # type: ignore[attr-defined]
    stmt = update(parcels).where(parcels.c.run_id == bindparam("w_run_id"))
    if newer_only:
        stmt = stmt.where(parcels.c.revision < bindparam("w_revision"))
    return stmt.values({name: bindparam(f"v_{name}") for name in _CHANGED})


# Every column a projection writes but started_at (fixed at the first).
_PARCEL_COLUMNS = ParcelRow.__table__.columns  # type: ignore[attr-defined]
_PARCEL_VALUES = tuple(c for c in _PARCEL_COLUMNS if c.name not in ("run_id", "current"))
_CHANGED = tuple(c.name for c in _PARCEL_VALUES if c.name != "started_at")
_UPDATE = {True: _parcel_update(True), False: _parcel_update(False)}
# An inbox row's columns from the task's fields: all of TaskBase (the key and the
# registration's ids are the writer's).
_TASK_VALUES = tuple(
    c
    for c in TaskRow.__table__.columns  # type: ignore[attr-defined]
    if c.name in TaskBase.model_fields
)


def apply_projection(
    session: Session, *, projection: ParcelProjection, force: bool = False
) -> bool:
    """The parcel row and its inbox tasks; False when a newer projection is already there.

    Core statements on the session's connection (no unit of work: a projection is a few
    rows written whole, five times per parcel or more, and the ORM's bookkeeping cost
    more than the statements)."""
    values = parcel_values(projection)
    run_id = projection.run_id
    params = {f"v_{name}": values[name] for name in _CHANGED}
    params |= {"w_run_id": run_id, "w_revision": projection.revision}
    connection = session.connection()
    parcels = ParcelRow.__table__  # type: ignore[attr-defined]
    inserted = False
    while True:
        if connection.execute(_UPDATE[not force], params).rowcount:
            break
        existing = connection.execute(
            select(parcels.c.revision).where(parcels.c.run_id == run_id)
        ).first()
        if existing is not None:
            session.rollback()
            if existing[0] >= projection.revision:
                return False  # stale: a newer projection of this run was written
            connection = session.connection()
            continue  # inserted by another writer, at a lower revision: update it
        first = insert_if_absent(connection, parcels, ["run_id"]).returning(parcels.c.run_id)
        if connection.execute(first.values(run_id=run_id, current=True, **values)).first():
            inserted = True
            break
        # another writer inserted it meanwhile: compare again
    tasks = TaskRow.__table__  # type: ignore[attr-defined]
    connection.execute(delete(tasks).where(tasks.c.run_id == bindparam("w_run_id")), params)
    if projection.tasks:
        connection.execute(
            insert(tasks),
            [
                {
                    **{c.name: stored(getattr(task, c.name), c) for c in _TASK_VALUES},
                    "run_id": run_id,
                    "parcel_id": projection.parcel_id,
                }
                for task in projection.tasks
            ],
        )
    if inserted or force:  # a run's current flag changes only when a run of its id is added
        _mark_current(session, projection.parcel_id)
    session.commit()
    return True


def insert_if_absent(connection: Connection, table: Table, key: list[str]) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING on the registry's two databases: no exception and
    no savepoint (which pysqlite handles badly). Whether it inserted is what RETURNING
    returns; psycopg reports no rowcount for it."""
    dialect = connection.dialect.name
    stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    return stmt.on_conflict_do_nothing(index_elements=key)


def _mark_current(session: Session, parcel_id: str) -> None:
    """The newest registration of an id is its current one (lists, inbox, GET /parcels)."""
    runs = session.exec(
        select(ParcelRow.run_id, ParcelRow.started_at, ParcelRow.current).where(
            ParcelRow.parcel_id == parcel_id
        )
    ).all()
    newest = max(runs, key=lambda r: (aware(r[1]), r[0]))[0]
    for run_id, _, current in runs:
        if current != (run_id == newest):
            session.execute(
                update(ParcelRow)
                .where(col(ParcelRow.run_id) == run_id)
                .values(current=run_id == newest)
            )


def apply_list_change(session: Session, *, change: ListChange) -> None:
    row = session.get(ListEntryRow, (change.list_name, change.run_id))
    if change.change == "enter" and row is None:
        session.add(
            ListEntryRow(
                list_name=change.list_name,
                run_id=change.run_id,
                parcel_id=change.parcel_id,
                name=change.name,
                district=change.district,
                entered_at=utc(change.at),
                reason=change.reason,
                citation=change.citation,
            )
        )
    elif change.change == "leave" and row is not None and row.left_at is None:
        row.left_at, row.left_reason = utc(change.at), change.reason
        session.add(row)
    session.commit()


def add_decisions(
    session: Session, *, run_id: str, parcel_id: str, decisions: list[Decision]
) -> None:
    """The decisions' rows, each once (a retried `decide` inserts nothing twice)."""
    if not decisions:
        return
    connection = session.connection()
    table = DecisionRow.__table__  # type: ignore[attr-defined]
    connection.execute(
        insert_if_absent(connection, table, ["decision_id"]),
        [
            {
                "decision_id": d.id,
                "run_id": run_id,
                "parcel_id": parcel_id,
                **d.model_dump(
                    include={
                        "rule",
                        "version",
                        "row",
                        "outcome",
                        "citation",
                        "explanation",
                        "law_over_plan",
                    }
                ),
                "inputs": d.inputs,
                "details": d.details,
                "evaluated_at": utc(d.evaluated_at),
            }
            for d in decisions
        ],
    )
    session.commit()


def add_notice(session: Session, *, notice: Notice) -> bool:
    """Record a notice; False if it was already recorded."""
    if session.get(NoticeRow, notice.key) is not None:
        return False
    session.add(
        NoticeRow(
            key=notice.key,
            run_id=notice.run_id,
            parcel_id=notice.parcel_id,
            kind=notice.kind,
            step=notice.step.value if notice.step else None,
            role=notice.role.value if notice.role else None,
            district=notice.district,
            deadline=utc(notice.deadline),
            escalate_to=notice.escalate_to.value if notice.escalate_to else None,
            at=utc(notice.at),
            details=notice.details,
        )
    )
    try:
        session.commit()
    except IntegrityError:  # a concurrent retry recorded it first
        session.rollback()
        return False
    return True


def forget_run(session: Session, *, run_id: str) -> None:
    """Remove every projection row of a registration (the rebuild writes them anew)."""
    for table in (TaskRow, ListEntryRow, DecisionRow, NoticeRow, ParcelRow):
        session.execute(delete(table).where(col(table.run_id) == run_id))
    session.commit()


def add_document(session: Session, *, row: DocumentRow) -> DocumentRow:
    """The same bytes uploaded twice to a parcel are one document: the first row stays."""
    existing = session.get(DocumentRow, row.document_id)
    if existing is not None:
        return existing
    session.add(row)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        found = session.get(DocumentRow, row.document_id)
        assert found is not None
        return found
    session.refresh(row)
    return row


def set_status(session: Session, *, key: str, value: str, detail: str = "") -> None:
    row = session.get(StatusRow, key) or StatusRow(
        key=key, value=value, updated_at=datetime.now(UTC)
    )
    row.value, row.detail, row.updated_at = value, detail[:2000], datetime.now(UTC)
    session.add(row)
    session.commit()


def save_report(session: Session, *, report: AnnualReport) -> None:
    """Keyed by (year, scope): a later run replaces the figures, a late retry of an earlier
    run does not."""
    row = session.get(ReportRow, (report.year, report.scope))
    if row is None:
        row = ReportRow(
            year=report.year,
            scope=report.scope,
            workflow_id="",
            generated_at=report.generated_at,
            body={},
        )
    elif (aware(row.generated_at) or report.generated_at) > report.generated_at:
        return
    row.workflow_id, row.generated_at = report.workflow_id, utc(report.generated_at)
    row.body = report.model_dump(mode="json")
    session.add(row)
    session.commit()
