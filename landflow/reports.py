"""The annual report (BJ 四(二), 一(二)): what the report workflow asks and what it produces."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class ReportRequest(BaseModel):
    """What the report workflow produces: `scopes` for `year`, or for the year of the run
    (Beijing time) minus `years_back` when `year` is None (how the schedules ask)."""

    scopes: list[str] = Field(min_length=1)
    year: int | None = Field(default=None, ge=2000, le=2200)
    years_back: int = Field(default=0, ge=0, le=10)


class ReportInput(BaseModel):
    year: int
    scope: str
    workflow_id: str
    generated_at: datetime


class ReportSummary(BaseModel):
    """What the report activity returns to the workflow; the report itself is in the registry."""

    year: int
    scope: str
    parcels: int
    safe_utilisation_rate: float | None


class ListFigures(BaseModel):
    entered: list[str]  # parcel ids that entered the list during the year
    left: list[str]  # parcel ids that left it during the year
    on_list_at_year_end: int


class OverdueFigures(BaseModel):
    escalations: int  # deadlines missed (escalation notices) during the year
    escalations_by_step: dict[str, int]
    overdue_now: list[str]  # parcels past a deadline when the report was generated


class SafeUtilisation(BaseModel):
    definition: str
    redeveloped: int
    safely_utilised: int
    rate: float | None  # None when no contaminated parcel has been redeveloped yet
    target: float
    target_year: int
    met: bool | None
    not_safe: list[str]  # redeveloped parcels that count against the rate


class AnnualReport(BaseModel):
    year: int
    scope: str  # CITY or a district
    period_start: datetime
    period_end: datetime  # exclusive; the year runs in Beijing time
    generated_at: datetime
    workflow_id: str
    parcels: int  # registered before the end of the year
    parcels_by_stage: dict[str, int]  # their stage when the report was generated
    lists: dict[str, ListFigures]
    overdue: OverdueFigures
    safe_utilisation: SafeUtilisation
