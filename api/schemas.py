"""Public response models: what clients read (table models are never returned directly)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from landflow.contracts import (
    ActionRecord,
    Decision,
    NextAction,
    ParcelState,
    Role,
    Stage,
    StageVisit,
)
from landflow.registry import ListEntryRow, ParcelRow, aware
from landflow.temporal import workflow_id


class ParcelStarted(BaseModel):
    parcel_id: str
    workflow_id: str
    stage: Stage
    waiting_on: Role | None
    deadline: datetime | None
    next_actions: list[NextAction]


class ParcelOut(BaseModel):
    parcel_id: str
    workflow_id: str
    district: str
    stage: Stage
    waiting_on: Role | None
    deadline: datetime | None
    overdue: bool
    listed: bool
    next_actions: list[NextAction]
    decisions: list[Decision]
    history: list[StageVisit]
    actions: list[ActionRecord]
    facts: dict[str, Any]

    @classmethod
    def of(cls, state: ParcelState) -> ParcelOut:
        return cls(
            workflow_id=workflow_id(state.parcel_id),
            **state.model_dump(include=set(cls.model_fields) - {"workflow_id"}),
        )


class ParcelSummary(BaseModel):
    parcel_id: str
    workflow_id: str
    name: str
    district: str
    planned_use: str
    stage: Stage
    waiting_on: Role | None
    deadline: datetime | None
    overdue: bool
    listed: bool
    updated_at: datetime

    @classmethod
    def of(cls, row: ParcelRow) -> ParcelSummary:
        data = row.model_dump()
        data["deadline"], data["updated_at"] = aware(row.deadline), aware(row.updated_at)
        return cls.model_validate(data)


class ParcelPage(BaseModel):
    parcels: list[ParcelSummary]
    count: int


class ListEntry(BaseModel):
    parcel_id: str
    name: str
    district: str
    entered_at: datetime
    left_at: datetime | None
    reason: str

    @classmethod
    def of(cls, row: ListEntryRow) -> ListEntry:
        data = row.model_dump()
        data["entered_at"], data["left_at"] = aware(row.entered_at), aware(row.left_at)
        return cls.model_validate(data)


class PublicList(BaseModel):
    list: str
    entries: list[ListEntry]


class ErrorOut(BaseModel):
    error: str
    detail: str
    fields: list[dict[str, Any]] | None = None


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` declaring the given error statuses as ErrorOut."""
    return {code: {"model": ErrorOut} for code in codes}
