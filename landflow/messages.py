"""Messages between the API, the workflow and the activities, and the names they use.

One module names the workflow ids and types, the activities (typed references: the
workflow calls `DECIDE`, the worker registers an implementation under `DECIDE.name`,
the trail reads `DECIDE.name` back) and the search attributes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from landflow.decisions import Decision
from landflow.documents import CitedDocument, SamplesRef
from landflow.policy import Policy
from landflow.procedure import Amendment, RulePoint
from landflow.reports import ReportInput, ReportSummary
from landflow.state import Disclosure, ParcelState, Parties, RunStatus
from landflow.vocabulary import Action, Role, Stage, Step

# --- workflows ------------------------------------------------------------------------

WORKFLOW_ID_PREFIX = "parcel-"
PARCEL_WORKFLOW = "ParcelWorkflowV2"  # the law's chain (2019); new parcels start here
LEGACY_PARCEL_WORKFLOW = "ParcelWorkflow"  # the 2016 plan's outline; running parcels finish
PARCEL_WORKFLOWS = (PARCEL_WORKFLOW, LEGACY_PARCEL_WORKFLOW)
REPORT_WORKFLOW = "ReportWorkflow"
REBUILD_WORKFLOW = "RegistryRebuildWorkflow"
REBUILD_WORKFLOW_ID = "landflow-registry-rebuild"


def workflow_id(parcel_id: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{parcel_id}"


def parcel_id_of(wid: str) -> str | None:
    return wid[len(WORKFLOW_ID_PREFIX) :] if wid.startswith(WORKFLOW_ID_PREFIX) else None


# Updates and queries of the parcel workflow besides the actions (named after Action).
STARTED_UPDATE = "started"
STATE_QUERY = "state"
LEGACY_STATE_QUERY = "current"


@dataclass(frozen=True)
class SearchAttribute:
    name: str
    kind: Literal["keyword", "keyword_list", "bool", "datetime"]


# No personal data here: search attributes are not encrypted (ENGINE-NOTES.md).
PARCEL_ID_SA = SearchAttribute("ParcelId", "keyword")
DISTRICT_SA = SearchAttribute("District", "keyword")
STAGE_SA = SearchAttribute("Stage", "keyword")
WAITING_ON_SA = SearchAttribute("WaitingOn", "keyword")  # the first role owed
ASSIGNEES_SA = SearchAttribute("Assignees", "keyword_list")  # every role owed, side tasks too
OVERDUE_SA = SearchAttribute("Overdue", "bool")
LISTED_SA = SearchAttribute("Listed", "bool")
DEADLINE_SA = SearchAttribute("DeadlineAt", "datetime")
SEARCH_ATTRIBUTES = (
    PARCEL_ID_SA,
    DISTRICT_SA,
    STAGE_SA,
    WAITING_ON_SA,
    ASSIGNEES_SA,
    OVERDUE_SA,
    LISTED_SA,
    DEADLINE_SA,
)

# --- activities, by typed reference ---------------------------------------------------

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out")


@dataclass(frozen=True)
class ActivityRef(Generic[In, Out]):
    name: str
    input: type[In]
    output: type[Out]


class PolicyRequest(BaseModel):
    parcel_id: str


class DecideRequest(BaseModel):
    """Decide the rules of one point of the procedure (`landflow.procedure.walk`)."""

    parcel_id: str
    run_id: str
    point: RulePoint
    first_number: dict[str, int] = Field(default_factory=dict)  # rule -> its next number
    decided: dict[str, str] = Field(default_factory=dict)  # rule -> latest outcome
    facts: dict[str, Any]
    context: dict[str, Any] = Field(default_factory=dict)  # small: digests, not copies
    samples: SamplesRef | None = None  # loaded by the activity from the document store


class DecideResult(BaseModel):
    decisions: list[Decision]


class TaskRow(BaseModel):
    """An inbox entry: one owner of one open task."""

    visit: int
    step: Step
    stage: Stage
    role: Role
    district: str | None = None
    party: str | None = None
    deadline: datetime
    overdue: bool
    blocking: bool
    reminded: bool = False


class ParcelProjection(BaseModel):
    """The registry's rows of one registration, written whole at every change (idempotent:
    the highest `revision` of a run wins; a newer registration of the id wins over an older).
    Each field is a column of the same name in the registry's parcels table (and each
    TaskRow field one of its tasks table); a unit test keeps them equal. Recorded in
    histories: add fields with defaults, never rename one."""

    parcel_id: str
    run_id: str
    workflow_id: str
    procedure: str
    revision: int
    name: str
    district: str
    planned_use: str
    area_m2: float
    location: dict[str, float] | None = None
    stage: Stage
    status: RunStatus
    listed: bool
    overdue: bool
    deadline: datetime | None
    waiting_on: list[Role]
    tasks: list[TaskRow]
    parties: Parties
    disclosure: Disclosure
    started_at: datetime
    updated_at: datetime


class ListChange(BaseModel):
    parcel_id: str
    run_id: str
    list_name: Literal["suspected", "contaminated", "negative"]
    change: Literal["enter", "leave"]
    at: datetime
    reason: str
    citation: str
    name: str
    district: str


NoticeKind = Literal[
    "reminder",
    "escalation",
    "evaluation_published",  # BJ 30: the evaluation result is public
    "removal_published",  # Law 66 ¶2
    "real_estate_registry",  # Law 67: the report goes with the registration records
    "spot_check_draw",  # BJ 30, 33: whether this evaluation was drawn for a spot-check
]


class Notice(BaseModel):
    """A message the parcel sends out: logged, kept in the registry, POSTed to a webhook.
    `key` makes it idempotent (registration, task visit, kind)."""

    key: str
    parcel_id: str
    run_id: str
    kind: NoticeKind
    district: str
    at: datetime
    step: Step | None = None
    role: Role | None = None
    deadline: datetime | None = None
    escalate_to: Role | None = None
    details: dict[str, Any] = Field(default_factory=dict)


LOAD_POLICY: ActivityRef[PolicyRequest, Policy] = ActivityRef("policy.load", PolicyRequest, Policy)
DECIDE: ActivityRef[DecideRequest, DecideResult] = ActivityRef(
    "rules.decide", DecideRequest, DecideResult
)
PROJECT: ActivityRef[ParcelProjection, None] = ActivityRef(
    "registry.project", ParcelProjection, type(None)
)
CHANGE_LIST: ActivityRef[ListChange, None] = ActivityRef(
    "registry.change_list", ListChange, type(None)
)
NOTIFY: ActivityRef[Notice, None] = ActivityRef("notices.send", Notice, type(None))
PARCEL_ACTIVITIES = (LOAD_POLICY, DECIDE, PROJECT, CHANGE_LIST, NOTIFY)
BUILD_REPORT: ActivityRef[ReportInput, ReportSummary] = ActivityRef(
    "reports.build", ReportInput, ReportSummary
)

# --- actors and actions ---------------------------------------------------------------


class Actor(BaseModel):
    """Who acts, as the API authenticated them from their token."""

    role: Role
    district: str | None = None
    party: str | None = None  # organisation id (统一社会信用代码) of party roles
    subject: str = ""


class ActionRequest(BaseModel):
    """The single argument of an action update. The API signs it (`landflow.signing`),
    the validator refuses it unsigned, badly signed, stale or for another parcel."""

    actor: Actor
    body: dict[str, Any] = Field(default_factory=dict)
    body_error: str | None = None  # unusable body: reported after role and stage checks
    problems: list[dict[str, Any]] = Field(default_factory=list)  # its fields, for the 422
    samples: SamplesRef | None = None
    documents: list[CitedDocument] = Field(default_factory=list)
    visit: int | None = None  # the step visit the caller answers (optional)
    key: str | None = None  # digest of caller + Idempotency-Key (never the key itself)
    size: int = 0  # bytes of the body as received
    issued_at: datetime
    signature: str = ""

    def digest(self) -> str:
        """SHA-256 of what is recorded: body, samples and citations (not who or when)."""
        return sha256_json(
            {
                "body": self.body,
                "samples": self.samples.model_dump(mode="json") if self.samples else None,
                "documents": [d.model_dump(mode="json") for d in self.documents],
            }
        )


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def sha256_json(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


class ActionOutcome(BaseModel):
    """An update's answer: small, whatever the parcel's age (its state is read by query)."""

    parcel_id: str
    action: Action
    seq: int
    visit: int
    stage: Stage
    step: Step | None  # the step open now
    waiting_on: list[Role]
    deadline: datetime | None
    status: RunStatus
    answered: Step | None = None  # the step the action answered (the trail names its clause)


class Restart(BaseModel):
    """An explicit, audited restart of an id whose earlier registration ended abnormally."""

    previous_run_id: str
    previous_status: str
    reason: str = Field(min_length=1, max_length=2000)
    by: str


class ParcelStart(BaseModel):
    """The workflow input: the facts at registration, or the state carried into a new run."""

    facts: dict[str, Any]
    restart: Restart | None = None
    carried: ParcelState | None = None
    policy: Policy | None = None  # carried with the state: a parcel keeps its policy
    # The procedure's amendments this registration starts under; absent (None) in the
    # inputs of registrations started before amendments existed.
    amendments: list[str] | None = None

    @classmethod
    def register(cls, facts: dict[str, Any], restart: Restart | None = None) -> ParcelStart:
        """A new registration, under every amendment of today's procedure."""
        return cls(facts=facts, restart=restart, amendments=[a.value for a in Amendment])


class Refusal(StrEnum):
    """Why an action was refused; the API maps each to its HTTP status once (api/errors.py)."""

    bad_signature = "BadSignature"  # not signed by the API: 403
    unknown_action = "UnknownAction"  # 404
    wrong_role = "WrongRole"  # 403
    wrong_district = "WrongDistrict"  # 403
    wrong_party = "WrongParty"  # 403: a company not bound to this parcel in this role
    parcel_closed = "ParcelClosed"  # 409: released, terminated, failed
    wrong_stage = "WrongStage"  # 409: not open now
    stale_visit = "StaleVisit"  # 409: answers another visit of the step
    idempotency_conflict = "IdempotencyConflict"  # 409: the key came with another body
    already_applied = "AlreadyApplied"  # 200: the key's action was applied before
    invalid_body = "InvalidBody"  # 422
    too_large = "TooLarge"  # 413: over the action's body limit
    history_budget = "HistoryBudget"  # 413: the parcel's history budget


class NextAction(BaseModel):
    """An action someone may take now: who (role, district, party), on which step visit."""

    action: Action
    role: Role
    district: str | None = None
    party: str | None = None
    step: Step
    visit: int
    deadline: datetime
    overdue: bool
    ends_step: bool  # False: recorded while the step stays open (a soil transport)


class StartedView(BaseModel):
    """What POST /parcels answers once the first step is open (no state query needed)."""

    stage: Stage
    waiting_on: list[Role]
    deadline: datetime | None
    run_id: str
    next_actions: list[NextAction] = []  # absent from the first procedure's answers


class RebuildRequest(BaseModel):
    write: bool = True  # False: only report the rows that disagree (verify)
    reason: str = ""
    closed_within_hours: float | None = None  # only parcels ended abnormally lately


class RebuildSummary(BaseModel):
    parcels: int
    registrations: int
    differences: int
    unknown_runs: int
    sample: list[str] = Field(default_factory=list)  # the first differences, for the reader


REBUILD: ActivityRef[RebuildRequest, RebuildSummary] = ActivityRef(
    "registry.rebuild", RebuildRequest, RebuildSummary
)
