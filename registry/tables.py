"""The registry's tables: one model family per entity (base → table row → public schema).

The registry is a projection of the engine for fast reads and the public lists. Every
row is keyed by the registration it belongs to (`run_id`, the first run of a parcel's
chain of runs), so an id registered again is a new run with rows of its own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, overload

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel


@overload
def utc(value: datetime) -> datetime: ...
@overload
def utc(value: datetime | None) -> datetime | None: ...
def utc(value: datetime | None) -> datetime | None:
    """Store instants in UTC (SQLite keeps no zone)."""
    return value.astimezone(UTC) if value else None


@overload
def aware(value: datetime) -> datetime: ...
@overload
def aware(value: datetime | None) -> datetime | None: ...
def aware(value: datetime | None) -> datetime | None:
    """Read an instant back as aware (SQLite returns naive UTC)."""
    return value.replace(tzinfo=UTC) if value and value.tzinfo is None else value


class ParcelBase(SQLModel):
    """A parcel registration as lists and inboxes show it. ParcelRow's columns are written
    from `landflow.messages.ParcelProjection`'s fields of the same names, TaskBase's from
    its TaskRow's (`registry.writes.stored`); tests/unit/registry/test_parcel_family.py
    keeps the names and types equal."""

    parcel_id: str = Field(index=True, max_length=64)
    workflow_id: str = Field(max_length=100)
    procedure: str = Field(max_length=40)
    name: str = Field(max_length=500)
    district: str = Field(index=True, max_length=50)
    planned_use: str = Field(max_length=20)
    area_m2: float = 0.0
    stage: str = Field(index=True, max_length=30)
    status: str = Field(index=True, max_length=20)
    listed: bool = False
    overdue: bool = Field(default=False, index=True)
    deadline: datetime | None = Field(default=None, index=True)
    waiting_on: str = Field(default="", max_length=200)  # roles, comma-separated
    started_at: datetime
    updated_at: datetime


class ParcelRow(ParcelBase, table=True):
    __tablename__ = "parcels"
    __table_args__ = (
        Index("ix_parcels_current_id", "current", "parcel_id"),
        # What an inbox or a list asks of each task's or entry's registration, answered
        # from the index alone (migration 0006).
        Index("ix_parcels_open", "run_id", "status", "current", "district"),
    )
    run_id: str = Field(primary_key=True, max_length=64)
    current: bool = Field(default=True, index=True)  # the newest registration of the id
    revision: int = 0  # the workflow's projection counter: a late, older write loses
    location: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    parties: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    disclosure: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class TaskBase(SQLModel):
    """One owner of one open task: an inbox entry."""

    visit: int
    step: str = Field(max_length=40)
    stage: str = Field(max_length=30)
    role: str = Field(index=True, max_length=40)
    district: str | None = Field(default=None, index=True, max_length=50)
    party: str | None = Field(default=None, index=True, max_length=40)
    deadline: datetime = Field(index=True)
    overdue: bool = False
    blocking: bool = True
    reminded: bool = False


class TaskRow(TaskBase, table=True):
    __tablename__ = "tasks"
    # An inbox is one role's (district's, party's) open tasks by deadline: read in index
    # order, a page stops after its rows instead of sorting every task of the role.
    # An inbox's total and counts per stage come from the index alone, not from every
    # task's row: 155 -> 13 ms for 50,000 tasks owed by one district EPB (migration 0006).
    __table_args__ = (
        Index("ix_tasks_inbox_district", "role", "district", "deadline", "id"),
        Index("ix_tasks_inbox_party", "role", "party", "deadline", "id"),
        Index("ix_tasks_inbox_role", "role", "deadline", "id"),  # city bureaus
        Index("ix_tasks_count_district", "role", "district", "stage", "overdue", "run_id"),
        Index("ix_tasks_count_party", "role", "party", "stage", "overdue", "run_id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(index=True, max_length=64)
    parcel_id: str = Field(max_length=64)


class ListEntryBase(SQLModel):
    list_name: str = Field(max_length=20)
    parcel_id: str = Field(index=True, max_length=64)
    name: str = Field(max_length=500)
    district: str = Field(max_length=50)
    entered_at: datetime
    left_at: datetime | None = None
    reason: str = Field(default="", max_length=2000)
    citation: str = Field(default="", max_length=200)
    left_reason: str | None = Field(default=None, max_length=2000)


class ListEntryRow(ListEntryBase, table=True):
    __tablename__ = "list_entries"
    # A list is read in entry order and counted from the index alone; whether a later
    # registration of the parcel entered it too is one index probe (migration 0006).
    __table_args__ = (
        Index(
            "ix_list_entries_order", "list_name", "entered_at", "parcel_id", "left_at", "district"
        ),
        Index("ix_list_entries_latest", "list_name", "parcel_id", "entered_at"),
    )
    list_name: str = Field(primary_key=True, max_length=20)
    run_id: str = Field(primary_key=True, max_length=64)


class DecisionBase(SQLModel):
    rule: str = Field(max_length=10)
    version: int
    row: str = Field(max_length=20)
    outcome: str = Field(max_length=40)
    citation: str = Field(max_length=200)
    explanation: str = Field(max_length=2000)
    law_over_plan: str | None = Field(default=None, max_length=1000)
    evaluated_at: datetime


class DecisionRow(DecisionBase, table=True):
    __tablename__ = "decisions"
    decision_id: str = Field(primary_key=True, max_length=200)
    run_id: str = Field(index=True, max_length=64)
    parcel_id: str = Field(index=True, max_length=64)
    inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class NoticeBase(SQLModel):
    kind: str = Field(max_length=30)
    step: str | None = Field(default=None, max_length=40)
    role: str | None = Field(default=None, max_length=40)
    district: str = Field(max_length=50)
    deadline: datetime | None = None
    escalate_to: str | None = Field(default=None, max_length=40)
    at: datetime


class NoticeRow(NoticeBase, table=True):
    __tablename__ = "notices"
    key: str = Field(primary_key=True, max_length=200)
    run_id: str = Field(index=True, max_length=64)
    parcel_id: str = Field(index=True, max_length=64)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON))


class DocumentBase(SQLModel):
    """An uploaded document's metadata; the bytes are in the document store, by SHA-256."""

    document_id: str = Field(max_length=40)
    sha256: str = Field(index=True, max_length=64)
    kind: str = Field(max_length=40)
    filename: str = Field(max_length=200)
    media_type: str = Field(max_length=100)
    size: int
    title: str | None = Field(default=None, max_length=500)
    uploaded_by: str = Field(max_length=200)
    uploaded_at: datetime


class DocumentRow(DocumentBase, table=True):
    __tablename__ = "documents"
    document_id: str = Field(primary_key=True, max_length=40)
    parcel_id: str = Field(index=True, max_length=64)
    uploaded_role: str = Field(max_length=40)
    uploaded_party: str | None = Field(default=None, max_length=40)


class ReportRow(SQLModel, table=True):
    """An annual report (BJ 四(二)); a later run for the same year and scope replaces it."""

    __tablename__ = "reports"
    year: int = Field(primary_key=True)
    scope: str = Field(primary_key=True, max_length=50)
    workflow_id: str = Field(max_length=200)
    generated_at: datetime
    body: dict[str, Any] = Field(sa_column=Column(JSON))


class StatusRow(SQLModel, table=True):
    """What the registry knows about itself (e.g. that a rebuild is due or running)."""

    __tablename__ = "registry_status"
    key: str = Field(primary_key=True, max_length=40)
    value: str = Field(max_length=40)
    detail: str = Field(default="", max_length=2000)
    updated_at: datetime


class WebSessionRow(SQLModel, table=True):
    """An open workbench session (api/web/session.py), by the SHA-256 of the id its signed
    cookie carries: signing out deletes the row, so a copied cookie stops working. The API
    writes it, not an activity: it is no projection of the engine, and a registry made
    anew only signs everyone out."""

    __tablename__ = "web_sessions"
    session_id: str = Field(primary_key=True, max_length=64)
    expires_at: datetime = Field(index=True)


LISTS = ("suspected", "contaminated", "negative")
PROJECTION_TABLES = (ParcelRow, TaskRow, ListEntryRow, DecisionRow, NoticeRow)
