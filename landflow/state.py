"""What a parcel's workflow knows, kept lean: digests and references, never copies of
what the history already holds (action bodies, samples, full decision inputs).

The state is read by query, carried across continue-as-new, and projected into the
registry; every field here must stay small or grow by a few hundred bytes per action.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from landflow.decisions import DecisionBrief
from landflow.documents import CitedDocument, SamplesRef
from landflow.facts import Party, Target
from landflow.procedure import Owner
from landflow.vocabulary import Action, Role, Stage, Step

RunStatus = Literal["running", "released", "terminated", "failed", "timed_out", "canceled"]

# The body fields the procedure branches on, kept with each action (the rest of the body
# is in the history's update event, once). Fast-forward after continue-as-new reads them.
DECISIVE_FIELDS: dict[Action, tuple[str, ...]] = {
    Action.closure_screening: ("result",),
    Action.investigation_report: ("ph", "farmland_type"),
    Action.filing_review: ("decision",),
    Action.risk_assessment_review: ("decision",),
    Action.removal_review: ("decision",),
    Action.risk_assessment_report: ("acceptable", "targets", "recommendation"),
    Action.responsibility_determination: ("outcome", "polluter"),
    Action.choose_path: ("path",),
    Action.monitoring_result: ("diffusion_found",),
    Action.remediation_plan: ("contractor",),
    Action.plan_filing_review: ("decision",),
    Action.commission_evaluator: ("party",),
    Action.evaluation: ("met", "results"),
    Action.spot_check: ("result",),
    Action.soil_transport: ("origin_district", "destination_district", "time", "mode"),
    Action.secondary_pollution_inspection: ("compliant",),
}


class Assignee(BaseModel):
    """One owner of an open task, resolved on this parcel."""

    owner: Owner
    role: Role
    district: str | None = None
    party: str | None = None  # party id the actor's token must carry
    owes: bool = True  # False: may only record side actions (the EPB's inspection in works)
    answered: bool = False
    opinion: str | None = None  # joint reviews: the decision given


class Task(BaseModel):
    """An open step visit: who owes it, by when, and what was sent about it."""

    visit: int
    step: Step
    stage: Stage
    blocking: bool = True
    opened_at: datetime
    deadline: datetime
    overdue: bool = False
    reminded: bool = False
    escalated: bool = False
    assignees: list[Assignee]
    allows: list[str] = Field(default_factory=list)  # conditions of `Answer.only_after` met
    about: int | None = None  # the action seq a side task refers to (a soil transport)


class ActionEntry(BaseModel):
    """An applied action: who, when, which step visit, a digest of the body and citations."""

    seq: int
    visit: int
    step: Step
    action: Action
    role: Role
    district: str | None = None
    party: str | None = None
    subject: str
    at: datetime
    digest: str  # SHA-256 of the recorded body (its bytes are in the update event)
    decisive: dict[str, Any] = Field(default_factory=dict)
    documents: list[CitedDocument] = Field(default_factory=list)
    samples: SamplesRef | None = None


class StageVisit(BaseModel):
    stage: Stage
    entered: datetime
    left: datetime | None = None
    by: str | None = None  # who moved the parcel out (role:subject), or "system"


class Parties(BaseModel):
    """Who is bound to the parcel in which role (object-level authorisation)."""

    land_user: Party | None = None
    responsible: Party | None = None
    responsible_role: Role | None = None  # responsible_party, land_user or district_government
    contractor: Party | None = None
    past_contractors: list[Party] = Field(default_factory=list)
    evaluator: Party | None = None


class ListMembership(BaseModel):
    list_name: Literal["suspected", "contaminated", "negative"]
    entered_at: datetime
    left_at: datetime | None = None
    reason: str
    citation: str
    left_reason: str | None = None


class Disclosure(BaseModel):
    """What the public sees (DOMAIN.md "Public disclosure"; BJ 30; Law 58, 66)."""

    investigation_conclusion: str | None = None
    pollutants_over_screening: list[str] = Field(default_factory=list)
    evaluation_result: str | None = None
    evaluation_date: datetime | None = None
    removal_published_at: datetime | None = None


class KeyUse(BaseModel):
    """An Idempotency-Key seen on this parcel: the body it came with and what it did."""

    digest: str
    seq: int


class JournalEntry(BaseModel):
    """What the procedure learnt at one point, so a continued run can fast-forward to it."""

    kind: Literal["step", "rules", "draw"]
    name: str
    seqs: list[int] = Field(default_factory=list)  # step: the answering action's seq
    decisions: list[str] = Field(default_factory=list)  # rules: ids in `decisions`
    value: float | None = None  # draw: a spot-check draw


class ParcelState(BaseModel):
    parcel_id: str
    procedure: str
    run_id: str  # the registration: the first run of this chain of continued runs
    facts: dict[str, Any]
    district: str
    stage: Stage = Stage.intake
    status: RunStatus = "running"
    stages: list[StageVisit] = Field(default_factory=list)
    tasks: list[Task] = Field(default_factory=list)
    actions: list[ActionEntry] = Field(default_factory=list)
    decisions: list[DecisionBrief] = Field(default_factory=list)
    parties: Parties = Field(default_factory=Parties)
    lists: list[ListMembership] = Field(default_factory=list)
    targets: list[Target] = Field(default_factory=list)
    investigator: Role | None = None
    disclosure: Disclosure = Field(default_factory=Disclosure)
    journal: list[JournalEntry] = Field(default_factory=list)
    keys: dict[str, KeyUse] = Field(default_factory=dict)
    seq: int = 0  # actions applied
    visits: int = 0  # tasks opened
    revision: int = 0  # projections written; the registry keeps the highest
    runs: int = 1  # runs in this chain (continue-as-new)
    history_bytes_before: int = 0  # bytes of the earlier runs of this chain
    carry_bytes: int = 0  # the last continue-as-new's event (the next is about as big)
    restart_of: str | None = None  # an abnormally closed registration this one restarts
    # Changes to the procedure this registration started under (landflow.procedure
    # AMENDMENTS); carried across continue-as-new, so a parcel keeps its own version.
    amendments: list[str] = Field(default_factory=list)

    def listed_on(self, list_name: str) -> bool:
        return any(m.list_name == list_name and m.left_at is None for m in self.lists)

    @property
    def listed(self) -> bool:
        return self.listed_on("contaminated")

    def blocking(self) -> Task | None:
        return next((t for t in self.tasks if t.blocking), None)

    def waiting_on(self) -> list[Role]:
        """Roles the procedure waits on now (the blocking task's owners yet to answer)."""
        task = self.blocking()
        if task is None:
            return []
        return list(dict.fromkeys(a.role for a in task.assignees if a.owes and not a.answered))

    def latest(self, rule: str) -> DecisionBrief | None:
        return next((d for d in reversed(self.decisions) if d.rule == rule), None)


class ParcelOutcome(BaseModel):
    """What a finished run returns: how and where it ended, and its stage visits (the
    trail reads them there). Everything else is in the history already; the whole state
    here was a fifth of a short parcel's history bytes."""

    parcel_id: str
    run_id: str
    status: RunStatus
    stage: Stage
    stages: list[StageVisit]

    @classmethod
    def of(cls, state: ParcelState) -> ParcelOutcome:
        return cls(
            parcel_id=state.parcel_id,
            run_id=state.run_id,
            status=state.status,
            stage=state.stage,
            stages=state.stages,
        )
