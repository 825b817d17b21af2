"""The registry: parcels, the two public lists, decisions and deadline notices.

Written only by activities, and every write is idempotent (keyed by business ids),
so a retried activity never duplicates a row. Read by the API for lists and inboxes.
Data access is keyword-only functions taking the session explicitly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, event, func, nulls_last
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, create_engine, select

from landflow.contracts import (
    AnnualReport,
    DeadlineNotice,
    Decision,
    ListChange,
    RegistryUpdate,
)

LISTS = ("contaminated", "negative")


def _utc(value: datetime | None) -> datetime | None:
    return value.astimezone(UTC) if value else None


def aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


class ParcelRow(SQLModel, table=True):
    __tablename__ = "parcels"
    parcel_id: str = Field(primary_key=True, max_length=64)
    workflow_id: str = Field(max_length=100)
    name: str = Field(max_length=500)
    district: str = Field(index=True, max_length=50)
    planned_use: str = Field(max_length=20)
    stage: str = Field(index=True, max_length=30)
    waiting_on: str | None = Field(default=None, index=True, max_length=40)
    deadline: datetime | None = Field(default=None, index=True)
    overdue: bool = Field(default=False, index=True)
    listed: bool = False
    created_at: datetime
    updated_at: datetime


class ListEntryRow(SQLModel, table=True):
    __tablename__ = "list_entries"
    list_name: str = Field(primary_key=True, max_length=20)
    parcel_id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=500)
    district: str = Field(max_length=50)
    entered_at: datetime
    left_at: datetime | None = None
    reason: str = Field(default="", max_length=500)


class DecisionRow(SQLModel, table=True):
    __tablename__ = "decisions"
    decision_id: str = Field(primary_key=True, max_length=120)
    parcel_id: str = Field(index=True, max_length=64)
    rule: str = Field(max_length=10)
    version: int
    row: str = Field(max_length=20)
    outcome: str = Field(max_length=40)
    citation: str = Field(max_length=200)
    explanation: str = Field(max_length=2000)
    inputs: dict[str, Any] = Field(sa_column=Column(JSON))
    details: dict[str, Any] = Field(sa_column=Column(JSON))
    evaluated_at: datetime


class NoticeRow(SQLModel, table=True):
    __tablename__ = "notices"
    key: str = Field(primary_key=True, max_length=200)
    parcel_id: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=20)
    step: str = Field(max_length=30)
    role: str = Field(max_length=40)
    district: str = Field(max_length=50)
    deadline: datetime
    escalate_to: str | None = Field(default=None, max_length=40)
    at: datetime


class ReportRow(SQLModel, table=True):
    """An annual report (BJ 四(二)); a later run for the same year and scope replaces it."""

    __tablename__ = "reports"
    year: int = Field(primary_key=True)
    scope: str = Field(primary_key=True, max_length=50)
    workflow_id: str = Field(max_length=200)
    generated_at: datetime
    body: dict[str, Any] = Field(sa_column=Column(JSON))


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA busy_timeout=30000")
            # WAL + NORMAL: no fsync per commit, the top cost in bench/PROFILE.md. A killed
            # process loses nothing; a power cut may lose the last commits, never corrupt
            # the file (the workflow history remains the record).
            dbapi_connection.execute("PRAGMA synchronous=NORMAL")

        return engine
    return create_engine(url, pool_pre_ping=True)


def create_schema(engine: Engine) -> None:
    """Bring the database to the latest migration (alembic, migrations/); a new table or
    column here needs a new revision there."""
    from landflow.migrate import upgrade  # the migrations import this module

    upgrade(engine)


# --- writes (activities only) --------------------------------------------------------


def upsert_parcel(session: Session, *, update: RegistryUpdate) -> None:
    """Newer state wins; a retried or late write of an older state changes nothing."""
    at = _utc(update.updated_at)
    row = session.get(ParcelRow, update.parcel_id)
    if row is None:
        row = ParcelRow(
            parcel_id=update.parcel_id,
            created_at=at,
            updated_at=at,
            workflow_id=update.workflow_id,
            name=update.name,
            district=update.district,
            planned_use=update.planned_use,
            stage=update.stage.value,
        )
    elif row.updated_at > at:
        return
    row.workflow_id, row.name, row.district = update.workflow_id, update.name, update.district
    row.planned_use, row.stage = update.planned_use, update.stage.value
    row.waiting_on = update.waiting_on.value if update.waiting_on else None
    row.deadline, row.overdue, row.listed = _utc(update.deadline), update.overdue, update.listed
    row.updated_at = at
    session.add(row)
    session.commit()


def change_lists(session: Session, *, change: ListChange) -> None:
    parcel = session.get(ParcelRow, change.parcel_id)
    name, district = (parcel.name, parcel.district) if parcel else ("", "")
    for list_name in LISTS:
        row = session.get(ListEntryRow, (list_name, change.parcel_id))
        if change.change == "enter" and row is None:
            session.add(
                ListEntryRow(
                    list_name=list_name,
                    parcel_id=change.parcel_id,
                    name=name,
                    district=district,
                    entered_at=_utc(change.at),
                    reason=change.reason,
                )
            )
        elif change.change == "leave" and row is not None and row.left_at is None:
            row.left_at = _utc(change.at)
            session.add(row)
    session.commit()


def add_decision(session: Session, *, parcel_id: str, decision: Decision) -> None:
    if session.get(DecisionRow, decision.id) is not None:
        return
    session.add(
        DecisionRow(
            decision_id=decision.id,
            parcel_id=parcel_id,
            rule=decision.rule,
            version=decision.version,
            row=decision.row,
            outcome=decision.outcome,
            citation=decision.citation,
            explanation=decision.explanation,
            inputs=decision.inputs,
            details=decision.details,
            evaluated_at=_utc(decision.evaluated_at),
        )
    )
    session.commit()


def add_notice(session: Session, *, notice: DeadlineNotice) -> bool:
    """Record a reminder or escalation; False if it was already recorded."""
    if session.get(NoticeRow, notice.key) is not None:
        return False
    session.add(
        NoticeRow(
            key=notice.key,
            parcel_id=notice.parcel_id,
            kind=notice.kind,
            step=notice.step.value,
            role=notice.role.value,
            district=notice.district,
            deadline=_utc(notice.deadline),
            escalate_to=notice.escalate_to.value if notice.escalate_to else None,
            at=_utc(notice.at),
        )
    )
    session.commit()
    return True


# --- reads ---------------------------------------------------------------------------


def list_parcels(
    session: Session,
    *,
    stage: str | None = None,
    district: str | None = None,
    waiting_on: str | None = None,
    overdue: bool | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[ParcelRow]:
    query = select(ParcelRow)
    if stage is not None:
        query = query.where(ParcelRow.stage == stage)
    if district is not None:
        query = query.where(ParcelRow.district == district)
    if waiting_on is not None:
        query = query.where(ParcelRow.waiting_on == waiting_on)
    if overdue is not None:
        query = query.where(ParcelRow.overdue == overdue)
    query = query.order_by(ParcelRow.parcel_id).offset(offset).limit(limit)
    return list(session.exec(query))


def tasks_for(session: Session, *, role: str, district: str | None) -> list[ParcelRow]:
    """A bureau's inbox: parcels waiting on the role (in its district), oldest deadline first."""
    query = select(ParcelRow).where(ParcelRow.waiting_on == role)
    if district is not None:
        query = query.where(ParcelRow.district == district)
    query = query.order_by(nulls_last(ParcelRow.deadline.asc()), ParcelRow.parcel_id)
    return list(session.exec(query))


def list_entries(session: Session, *, list_name: str, current: bool = True) -> list[ListEntryRow]:
    query = select(ListEntryRow).where(ListEntryRow.list_name == list_name)
    if current:
        query = query.where(ListEntryRow.left_at.is_(None))
    return list(session.exec(query.order_by(ListEntryRow.entered_at, ListEntryRow.parcel_id)))


def decisions_for(session: Session, *, parcel_id: str) -> list[DecisionRow]:
    query = select(DecisionRow).where(DecisionRow.parcel_id == parcel_id)
    return list(session.exec(query.order_by(DecisionRow.evaluated_at, DecisionRow.decision_id)))


def notices_for(session: Session, *, parcel_id: str) -> list[NoticeRow]:
    query = select(NoticeRow).where(NoticeRow.parcel_id == parcel_id)
    return list(session.exec(query.order_by(NoticeRow.at, NoticeRow.key)))


def count_by_stage(session: Session) -> dict[str, int]:
    rows = session.exec(select(ParcelRow.stage, func.count()).group_by(ParcelRow.stage))
    return dict(rows.all())


def save_report(session: Session, *, report: AnnualReport) -> None:
    """Keyed by (year, scope): a later run replaces the figures, a late retry of an earlier
    run does not."""
    row = session.get(ReportRow, (report.year, report.scope))
    if row is None:
        row = ReportRow(
            year=report.year, scope=report.scope, workflow_id="", generated_at=report.generated_at
        )
    elif aware(row.generated_at) > report.generated_at:
        return
    row.workflow_id, row.generated_at = report.workflow_id, _utc(report.generated_at)
    row.body = report.model_dump(mode="json")
    session.add(row)
    session.commit()


def get_report(session: Session, *, year: int, scope: str) -> AnnualReport | None:
    row = session.get(ReportRow, (year, scope))
    return AnnualReport.model_validate(row.body) if row else None
