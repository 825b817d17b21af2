"""The contracts of the first procedure (the 2016 plan's outline), frozen.

Parcels started on it (workflow type `ParcelWorkflow`) finish on it, and their
histories keep replaying: these models must keep reading the payloads those histories
hold. New parcels run `ParcelWorkflowV2` (workflows/parcel.py); do not extend this.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rules import gb_standards


class Role(StrEnum):
    reserve_agency = "reserve_agency"
    land_user = "land_user"
    district_government = "district_government"
    district_epb = "district_epb"
    city_epb = "city_epb"
    planning_land = "planning_land"
    responsible_party = "responsible_party"
    third_party_evaluator = "third_party_evaluator"
    auditor = "auditor"
    ops = "ops"
    public = "public"


# Roles that act for one district only: their tokens carry a district and they may
# act only on parcels of that district.
DISTRICT_ROLES = frozenset({Role.district_government, Role.district_epb})


class Stage(StrEnum):
    """The nine stages of DOMAIN.md, plus the terminal `released`."""

    intake = "intake"
    closure_screening = "closure_screening"
    investigation = "investigation"
    filing = "filing"
    listing = "listing"
    risk_control = "risk_control"
    remediation = "remediation"
    evaluation = "evaluation"
    release = "release"
    released = "released"


class Step(StrEnum):
    """A waiting point inside a stage: one role owes one of a few actions by a deadline."""

    closure_screening = "closure_screening"
    investigation = "investigation"
    filing_city_epb = "filing_city_epb"
    filing_planning_land = "filing_planning_land"
    choose_path = "choose_path"
    control_measures = "control_measures"
    monitoring = "monitoring"
    isolation = "isolation"
    remediation_plan = "remediation_plan"
    works = "works"
    evaluation = "evaluation"
    release = "release"


class Action(StrEnum):
    closure_screening = "closure_screening"
    investigation_report = "investigation_report"
    filing_review = "filing_review"
    choose_path = "choose_path"
    control_measures = "control_measures"
    monitoring_result = "monitoring_result"
    isolation_measures = "isolation_measures"
    remediation_plan = "remediation_plan"
    soil_transport = "soil_transport"
    works_completed = "works_completed"
    evaluation = "evaluation"
    release = "release"


# --- parcel facts (DOMAIN.md vocabulary) -------------------------------------------

CurrentUse = Literal[
    "industrial",
    "gas_station",
    "auto_repair",
    "other_service",
    "farmland",
    "residential",
    "commercial",
    "public_service",
    "green_space",
    "unused",
]
Industry = Literal[
    "nonferrous_smelting",
    "petroleum_processing",
    "chemical",
    "coking",
    "electroplating",
    "pharmaceutical",
    "auto_manufacturing",
    "transport_equipment",
    "tanning",
    "hazardous_waste",
    "other",
]
RightStatus = Literal["held", "to_be_recovered", "recovered", "transferred"]
FarmlandClass = Literal["priority_protection", "safe_use", "strict_control"]

Text = Field(min_length=1, max_length=500)
LongText = Field(default="", max_length=10_000)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Polluter(Strict):
    name: str = Text
    status: Literal["exists", "succeeded", "gone", "unknown"]
    successor: str | None = Field(default=None, max_length=500)
    is_former_right_holder: bool = False

    @model_validator(mode="after")
    def _successor_named(self) -> Polluter:
        if self.status == "succeeded" and not self.successor:
            raise ValueError("successor is required when status is 'succeeded'")
        return self


class Transferee(Strict):
    name: str = Text
    agreed_responsible: str | None = Field(default=None, max_length=500)


class Sample(Strict):
    item: str = Field(min_length=1, max_length=200)
    value_mg_kg: float = Field(ge=0, le=1e9)
    unit: str = Field(default="mg/kg", max_length=20)
    depth_m: float | None = Field(default=None, ge=0, le=1000)
    background_mg_kg: float | None = Field(default=None, ge=0, le=1e9)


def _check_samples(samples: list[Sample]) -> list[Sample]:
    """Every sample must name a GB 36600 item and a known unit; report all bad ones at once."""
    problems = gb_standards.sample_problems([s.model_dump() for s in samples])
    if problems:
        listed = "; ".join(
            f"samples[{p['index']}].{p['field']}={p['value']!r}: {p['reason']}" for p in problems
        )
        raise ValueError(f"unknown items or units: {listed}")
    return samples


# Parcel ids are the agency's codes: they name workflows (`parcel-<id>`) and URLs.
PARCEL_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


class ParcelFacts(Strict):
    parcel_id: str = Field(min_length=1, max_length=64, pattern=PARCEL_ID_PATTERN)
    name: str = Text
    district: str = Field(min_length=1, max_length=50)
    area_m2: float = Field(gt=0, le=1e9)
    current_use: CurrentUse
    industry: Industry | None = None
    enterprise_closed: bool = False
    right_status: RightStatus
    planned_use: str = Field(min_length=1, max_length=20)
    farmland_class: FarmlandClass | None = None
    polluter: Polluter | None = None
    transferee: Transferee | None = None
    samples: list[Sample] = Field(default_factory=list, max_length=2000)
    ph: float | None = Field(default=None, ge=0, le=14)
    farmland_type: Literal["paddy", "orchard", "other"] | None = None

    @field_validator("planned_use")
    @classmethod
    def _planned_use_known(cls, value: str) -> str:
        gb_standards.normalize_planned_use(value)  # raises ValueError naming accepted values
        return value

    @field_validator("samples")
    @classmethod
    def _samples_known(cls, samples: list[Sample]) -> list[Sample]:
        return _check_samples(samples)

    def submitted(self) -> dict[str, Any]:
        """The facts as the agency sent them, without defaults it did not send."""
        return self.model_dump(mode="json", exclude_unset=True)


# --- actors and actions --------------------------------------------------------------


class Actor(BaseModel):
    role: Role
    district: str | None = None
    party: str | None = None
    subject: str = ""


class ActionRequest(BaseModel):
    """What the API sends as the single argument of an action update (histories recorded
    before actors were signed carry only the first three fields)."""

    actor: Actor
    payload: dict[str, Any] = Field(default_factory=dict)
    # Set by the API when the body was not a JSON object; reported after the role and
    # stage checks, so an actor out of role learns nothing about the body.
    body_error: str | None = None
    body: dict[str, Any] | None = None  # today's API sends the body under this name
    visit: int | None = None
    key: str | None = None
    size: int = 0
    issued_at: datetime | None = None
    signature: str = ""

    @model_validator(mode="after")
    def _body_is_the_payload(self) -> ActionRequest:
        if self.body is not None and not self.payload:
            self.payload = self.body
        return self


class ClosureScreening(Strict):
    result: Literal["suspected", "cleared"]
    raw_materials: str = LongText
    emissions: str = LongText
    notes: str = LongText


class InvestigationReport(Strict):
    pollutants: list[str] = Field(default_factory=list, max_length=200)
    samples: list[Sample] = Field(min_length=1, max_length=2000)
    extent_m2: float = Field(ge=0, le=1e9)
    degree: str = Field(min_length=1, max_length=2000)
    # Law 60-61: where samples exceed screening values, the risk assessment says
    # whether the risk is acceptable for the planned use.
    risk_acceptable: bool | None = None
    investigator: str = Field(default="", max_length=500)

    @field_validator("samples")
    @classmethod
    def _samples_known(cls, samples: list[Sample]) -> list[Sample]:
        return _check_samples(samples)


class FilingReview(Strict):
    decision: Literal["accepted", "returned"]
    reasons: str = LongText

    @model_validator(mode="after")
    def _returned_with_reasons(self) -> FilingReview:
        if self.decision == "returned" and not self.reasons:
            raise ValueError("reasons are required when a filing is returned")
        return self


class ChoosePath(Strict):
    path: Literal["risk_control", "remediation"]
    reason: str = LongText


class ControlMeasures(Strict):
    control_zone: str = Field(min_length=1, max_length=2000)
    signs_posted: bool
    notice_published: bool
    monitoring_plan: str = LongText


class MonitoringResult(Strict):
    diffusion_found: bool
    sampled_on: str = Field(default="", max_length=40)
    notes: str = LongText


class IsolationMeasures(Strict):
    measures: str = Field(min_length=1, max_length=2000)
    completed_on: str = Field(default="", max_length=40)


class RemediationPlan(Strict):
    plan: str = Field(min_length=1, max_length=10_000)
    contractor: str = Text
    notice_board: bool = True
    target: str = LongText


class SoilTransport(Strict):
    origin_district: str = Field(min_length=1, max_length=50)
    destination_district: str = Field(min_length=1, max_length=50)
    time: str = Field(min_length=1, max_length=100)
    route: str = Field(min_length=1, max_length=2000)
    quantity_m3: float = Field(gt=0, le=1e9)
    destination: str = Field(min_length=1, max_length=500)
    disposal: str = Field(min_length=1, max_length=2000)


class WorksCompleted(Strict):
    completed_on: str = Field(default="", max_length=40)
    summary: str = LongText


class Evaluation(Strict):
    met: bool
    evaluator: str = Text
    report: str = LongText


class Release(Strict):
    notes: str = LongText


ACTION_BODIES: dict[Action, type[Strict]] = {
    Action.closure_screening: ClosureScreening,
    Action.investigation_report: InvestigationReport,
    Action.filing_review: FilingReview,
    Action.choose_path: ChoosePath,
    Action.control_measures: ControlMeasures,
    Action.monitoring_result: MonitoringResult,
    Action.isolation_measures: IsolationMeasures,
    Action.remediation_plan: RemediationPlan,
    Action.soil_transport: SoilTransport,
    Action.works_completed: WorksCompleted,
    Action.evaluation: Evaluation,
    Action.release: Release,
}


# --- decisions, deadlines and state --------------------------------------------------


class Decision(BaseModel):
    """One rule decision: what it saw, what it decided, and on what authority."""

    id: str
    rule: str
    version: int
    row: str
    outcome: str
    citation: str
    explanation: str
    inputs: dict[str, Any]
    details: dict[str, Any] = Field(default_factory=dict)
    evaluated_at: datetime


class DecideInput(BaseModel):
    parcel_id: str
    decision_id: str
    rule: str
    facts: dict[str, Any]
    context: dict[str, Any] = Field(default_factory=dict)


class StepPolicy(BaseModel):
    days: float = Field(gt=0)
    remind_days_before: float = Field(ge=0)
    escalate_to: Role


class Policy(BaseModel):
    version: str
    steps: dict[Step, StepPolicy]


class StageVisit(BaseModel):
    stage: Stage
    entered: datetime
    left: datetime | None = None
    by: str | None = None  # who moved the parcel out (role:subject), or "system"


class ActionRecord(BaseModel):
    action: Action
    role: Role
    subject: str
    at: datetime
    payload: dict[str, Any]


class NextAction(BaseModel):
    action: Action
    role: Role


class ParcelState(BaseModel):
    """What the workflow knows; returned by the `state` query."""

    parcel_id: str
    facts: dict[str, Any]
    district: str
    stage: Stage
    step: Step | None = None
    waiting_on: Role | None = None
    deadline: datetime | None = None
    overdue: bool = False
    listed: bool = False
    next_actions: list[NextAction] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    history: list[StageVisit] = Field(default_factory=list)
    actions: list[ActionRecord] = Field(default_factory=list)
    investigator: Role | None = None
    remediator: Role | None = None
    remediation_party: str | None = None
    contractor: str | None = None


# --- activity inputs -----------------------------------------------------------------


class RegistryUpdate(BaseModel):
    """The registry row of a parcel, written at every change (idempotent upsert)."""

    parcel_id: str
    workflow_id: str
    name: str
    district: str
    planned_use: str
    stage: Stage
    waiting_on: Role | None
    deadline: datetime | None
    overdue: bool
    listed: bool = False
    updated_at: datetime


class ListChange(BaseModel):
    parcel_id: str
    change: Literal["enter", "leave"]
    at: datetime
    reason: str


class DeadlineNotice(BaseModel):
    """A reminder or an escalation; `key` makes it idempotent (parcel, step, visit, kind)."""

    key: str
    parcel_id: str
    kind: Literal["reminder", "escalation"]
    step: Step
    role: Role
    district: str
    deadline: datetime
    escalate_to: Role | None = None
    at: datetime
