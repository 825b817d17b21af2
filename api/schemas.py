"""Public response models: what clients read. Table rows are never returned directly:
each public model derives from its table's base (registry/tables.py) or is built from
the workflow's state."""

from __future__ import annotations

import builtins
import datetime as dt
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from landflow.decisions import DecisionBrief
from landflow.documents import DOCUMENT_KIND_ZH, DocumentKind
from landflow.facts import Party, Target
from landflow.messages import NextAction, workflow_id
from landflow.state import ActionEntry, Disclosure, ListMembership, ParcelState, Parties, StageVisit
from landflow.vocabulary import BEIJING_TIME, Role, Stage
from registry.tables import (
    DecisionBase,
    DocumentBase,
    DocumentRow,
    ListEntryBase,
    ParcelBase,
    ParcelRow,
    TaskBase,
    aware,
)
from workflows.gate import next_actions


def _aware(data: dict[str, Any], *names: str) -> dict[str, Any]:
    return {**data, **{n: aware(data[n]) for n in names if n in data}}


class ParcelStarted(BaseModel):
    parcel_id: str
    workflow_id: str
    run_id: str | None
    stage: Stage
    waiting_on: list[Role]
    deadline: datetime | None
    next_actions: list[NextAction]


class PartiesOut(Parties):
    """The parcel's parties; `responsible_party` is `responsible` under the name clients
    read (issue 11), both kept."""

    responsible_party: Party | None = Field(
        default=None, description="the responsible party bound by R4 (the same as `responsible`)"
    )

    @classmethod
    def of(cls, parties: Parties) -> PartiesOut:
        return cls.model_validate({**dict(parties), "responsible_party": parties.responsible})


class ParcelOut(BaseModel):
    """A parcel as its workflow knows it now (read by query, never from the registry)."""

    parcel_id: str
    workflow_id: str
    run_id: str
    procedure: str
    district: str
    stage: Stage
    status: str
    waiting_on: list[Role]
    deadline: datetime | None
    overdue: bool
    listed: bool
    next_actions: list[NextAction]
    decisions: list[DecisionBrief]
    history: list[StageVisit] = Field(description="every stage visit, who moved the parcel on")
    actions: list[ActionEntry]
    facts: dict[str, Any]
    parties: PartiesOut
    lists: list[ListMembership]
    targets: list[Target]
    disclosure: Disclosure
    runs: int = Field(description="runs of this registration (continue-as-new)")
    restart_of: str | None = None

    @classmethod
    def of(cls, state: ParcelState, status: str | None = None) -> ParcelOut:
        blocking = state.blocking()
        return cls(
            parcel_id=state.parcel_id,
            workflow_id=workflow_id(state.parcel_id),
            run_id=state.run_id,
            procedure=state.procedure,
            district=state.district,
            stage=state.stage,
            status=status or state.status,
            waiting_on=state.waiting_on() if (status or state.status) == "running" else [],
            deadline=blocking.deadline if blocking else None,
            overdue=bool(blocking and blocking.overdue),
            listed=state.listed,
            next_actions=next_actions(state) if (status or state.status) == "running" else [],
            decisions=state.decisions,
            history=state.stages,
            actions=state.actions,
            facts=state.facts,
            parties=PartiesOut.of(state.parties),
            lists=state.lists,
            targets=state.targets,
            disclosure=state.disclosure,
            runs=state.runs,
            restart_of=state.restart_of,
        )


class ParcelSummary(ParcelBase):
    run_id: str
    waiting_on_roles: list[str] = Field(default_factory=list)

    @classmethod
    def of(cls, row: ParcelRow) -> ParcelSummary:
        data = _aware(row.model_dump(), "deadline", "started_at", "updated_at")
        return cls.model_validate(
            {**data, "waiting_on_roles": [r for r in row.waiting_on.split(",") if r]}
        )


class Paged(BaseModel):
    count: int = Field(description="items on this page")
    total: int = Field(description="items matching the query, on every page")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


class ParcelPage(Paged):
    parcels: list[ParcelSummary]


class RunOut(ParcelSummary):
    current: bool


class RunsOut(BaseModel):
    parcel_id: str
    runs: list[RunOut]


class TaskOut(TaskBase):
    parcel_id: str
    run_id: str
    name: str
    district_of_parcel: str
    days_left: float

    @classmethod
    def of(cls, task: Any, parcel: ParcelRow, now: datetime) -> TaskOut:
        data = _aware(task.model_dump(), "deadline")
        return cls.model_validate(
            {
                **data,
                "name": parcel.name,
                "district_of_parcel": parcel.district,
                "days_left": round((data["deadline"] - now).total_seconds() / 86_400, 1),
            }
        )


class TaskPage(Paged):
    tasks: list[TaskOut]
    by_stage: dict[str, int] = Field(description="the caller's open tasks per stage")


def public_responsible(parcel: ParcelRow) -> str | None:
    """The responsible party as the public sees it: the company R4 named, or the district
    government when R4 gives it the duty (Law 68; BJ 28; Law 45 ¶2), named, never null."""
    parties = parcel.parties or {}
    if parties.get("responsible_role") == Role.district_government.value:
        return f"{parcel.district}人民政府"
    return (parties.get("responsible") or {}).get("name")


class ListEntryOut(ListEntryBase):
    """A public list entry with the disclosure fields (DOMAIN.md "Public disclosure")."""

    location: dict[str, float] | None = None
    area_m2: float | None = None
    responsible_party: str | None = None
    investigation_conclusion: str | None = None
    pollutants_over_screening: list[str] = Field(default_factory=list)
    evaluation_result: str | None = None
    evaluation_date: datetime | None = None

    @classmethod
    def of(cls, entry: Any, parcel: ParcelRow | None) -> ListEntryOut:
        data = _aware(entry.model_dump(), "entered_at", "left_at")
        if parcel is not None:
            disclosure = parcel.disclosure or {}
            data |= {
                "location": parcel.location,
                "area_m2": parcel.area_m2,
                "responsible_party": public_responsible(parcel),
                "investigation_conclusion": disclosure.get("investigation_conclusion"),
                "pollutants_over_screening": disclosure.get("pollutants_over_screening") or [],
                "evaluation_result": disclosure.get("evaluation_result"),
                "evaluation_date": disclosure.get("evaluation_date"),
            }
        return cls.model_validate(data)


class PublicList(Paged):
    list: str
    entries: builtins.list[ListEntryOut]


class SupplyCheck(BaseModel):
    """May the parcel be supplied for this use now (Law 61 ¶2, 66 ¶3; BJ 15, 20)?"""

    parcel_id: str
    use: str
    allowed: bool
    reason: str
    citation: str


class PublicDocumentOut(BaseModel):
    """A document of a public kind as the public sees it: what it is and its digest, never
    who uploaded it, its title, its file name or an internal id."""

    kind: DocumentKind
    kind_name: str = Field(description="the kind's Chinese name")
    sha256: str
    size: int
    media_type: str
    date: dt.date = Field(description="the day it was uploaded (Beijing time)")
    url: str = Field(description="the public download, addressed by SHA-256")

    @classmethod
    def of(cls, row: DocumentRow) -> PublicDocumentOut:
        kind = DocumentKind(row.kind)
        return cls(
            kind=kind,
            kind_name=DOCUMENT_KIND_ZH[kind],
            sha256=row.sha256,
            size=row.size,
            media_type=row.media_type,
            date=aware(row.uploaded_at).astimezone(BEIJING_TIME).date(),
            url=f"/public/parcels/{row.parcel_id}/documents/{row.sha256}",
        )


class PublicProfile(BaseModel):
    """What the public register shows of a parcel: no personal data, no internal ids."""

    parcel_id: str
    name: str
    district: str
    area_m2: float
    location: dict[str, float] | None
    stage: str
    status: str
    listed: bool
    responsible_party: str | None
    disclosure: dict[str, Any]
    lists: list[ListEntryOut]
    documents: list[PublicDocumentOut]


class DecisionOut(DecisionBase):
    id: str
    run_id: str
    inputs: dict[str, Any]
    details: dict[str, Any]


class ParcelDecisionsOut(BaseModel):
    parcel_id: str
    run_id: str
    decisions: list[DecisionOut]


class DocumentOut(DocumentBase):
    parcel_id: str

    @classmethod
    def of(cls, row: Any) -> DocumentOut:
        return cls.model_validate(_aware(row.model_dump(), "uploaded_at"))


class DocumentList(BaseModel):
    parcel_id: str
    documents: list[DocumentOut]


class ErrorOut(BaseModel):
    error: str
    detail: str
    fields: list[dict[str, Any]] | None = None


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` declaring the given error statuses as ErrorOut."""
    return {code: {"model": ErrorOut} for code in codes}


PublicProfile.model_rebuild()
