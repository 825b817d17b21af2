"""The body of every action, as a client sends it (and as OpenAPI documents it).

Samples and cited documents are lifted out of the body by the API before the action
reaches the workflow: samples are stored once and cited by digest, documents are cited
with their SHA-256 (see `landflow.messages.ActionRequest`). What stays is small.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field, model_validator

from landflow.documents import DocumentRef
from landflow.facts import Figure, LongText, Party, Polluter, Sample, Strict, Target, Text
from landflow.vocabulary import Action

MAX_SAMPLES = 5000  # per report; bigger lab files are split by the lab (policy may lower it)


class Cites(Strict):
    documents: list[DocumentRef] = Field(
        default_factory=list, max_length=50, description="uploaded documents this action cites"
    )


class ClosureScreening(Cites):
    """BJ 16: the district EPB screens a closed enterprise's site."""

    result: Literal["suspected", "cleared"]
    raw_materials: str = LongText()
    emissions: str = LongText()
    notes: str = LongText()


class InvestigationReport(Cites):
    """BJ 17; Law 59: the investigation report (调查报告) with its sample results."""

    samples: list[Sample] = Field(
        default_factory=list,
        max_length=MAX_SAMPLES,
        description="sample results; or cite a lab_results document (XLSX or CSV)",
    )
    extent_m2: float = Field(ge=0, le=1e9)
    degree: str = Text(max_length=2000)
    pollutants: list[str] = Field(default_factory=list, max_length=200)
    investigator: str = Field(default="", max_length=500, description="the firm that investigated")
    ph: float | None = Field(default=None, ge=0, le=14, description="farmland samples (GB 15618)")
    farmland_type: Literal["paddy", "orchard", "other"] | None = None


class ExpertOpinion(Strict):
    """评审意见: what the expert panel concluded and what must change."""

    conclusion: str = Text(max_length=2000)
    required_revisions: list[str] = Field(default_factory=list, max_length=100)
    panel: list[str] = Field(default_factory=list, max_length=50)
    date: date


class Review(Cites):
    """A bureau's opinion in a joint review (Law 59 ¶3, 61, 66; BJ 17)."""

    decision: Literal["accepted", "returned"]
    reasons: str = LongText()
    opinion: ExpertOpinion | None = None

    @model_validator(mode="after")
    def _returned_with_reasons(self) -> Review:
        if self.decision == "returned" and not self.reasons:
            raise ValueError("reasons are required when the report is returned")
        if self.decision == "returned" and self.opinion is None:
            raise ValueError("an expert-review opinion is required when the report is returned")
        return self


class RiskAssessmentReport(Cites):
    """Law 60-61: the risk-assessment report (风险评估报告) and its targets."""

    acceptable: bool = Field(description="whether the risk is acceptable for the planned use")
    targets: list[Target] = Field(default_factory=list, max_length=200)
    recommendation: Literal["risk_control", "remediation"] | None = None
    summary: str = LongText()

    @model_validator(mode="after")
    def _targets_when_unacceptable(self) -> RiskAssessmentReport:
        if not self.acceptable and not self.targets:
            raise ValueError("targets are required when the risk is not acceptable")
        if not self.acceptable and self.recommendation is None:
            raise ValueError("recommendation is required when the risk is not acceptable")
        return self


class ResponsibilityDetermination(Cites):
    """Law 48: who the polluter is, determined by the city EPB with the planning bureau."""

    outcome: Literal["named", "undetermined"]
    polluter: Polluter | None = None
    reasons: str = LongText()

    @model_validator(mode="after")
    def _named_polluter(self) -> ResponsibilityDetermination:
        if self.outcome == "named" and (
            self.polluter is None
            or self.polluter.status
            in (
                "unknown",
                "disputed",
            )
        ):
            raise ValueError("a named determination names the polluter (status exists, ...)")
        if self.outcome == "undetermined" and self.polluter is not None:
            raise ValueError("an undetermined outcome names no polluter")
        return self


class ChoosePath(Strict):
    """BJ 19: not developed now or not remediable → control; development → remediation."""

    path: Literal["risk_control", "remediation"]
    reason: str = LongText()


class ControlMeasures(Cites):
    """BJ 19; Law 63: the district government's zone, signs and public notice."""

    control_zone: str = Text(max_length=2000)
    signs_posted: bool
    notice_published: bool
    monitoring_plan: str = LongText()

    @model_validator(mode="after")
    def _signs_and_notice(self) -> ControlMeasures:
        if not (self.signs_posted and self.notice_published):
            raise ValueError("BJ 19 requires signs posted and a public notice published")
        return self


class MonitoringResult(Cites):
    """Law 62: the responsible party reports monitoring periodically."""

    diffusion_found: bool
    sampled_on: date | None = None
    notes: str = LongText()
    samples: list[Sample] = Field(default_factory=list, max_length=MAX_SAMPLES)


class IsolationMeasures(Cites):
    """BJ 19: the land user isolates and blocks the diffusion."""

    measures: str = Text(max_length=2000)
    completed_on: date | None = None


class RiskControlCompleted(Cites):
    """Law 65: control targets reached; a risk-control effect evaluation follows."""

    summary: str = LongText()
    completed_on: date | None = None


class RemediationPlan(Cites):
    """Law 64; BJ 28-29: the plan (修复方案), filed with the district EPB."""

    plan: str = Text(max_length=10_000)
    contractor: Party
    notice_board: bool = Field(description="BJ 29: a public notice board during works")
    target: str = LongText()

    @model_validator(mode="after")
    def _notice_board(self) -> RemediationPlan:
        if not self.notice_board:
            raise ValueError("BJ 29 requires a public notice board during the works")
        return self


class PlanFilingReview(Strict):
    """Law 64: the district EPB acknowledges the filing or returns it as incomplete."""

    decision: Literal["acknowledged", "returned"]
    reasons: str = LongText()

    @model_validator(mode="after")
    def _returned_with_reasons(self) -> PlanFilingReview:
        if self.decision == "returned" and not self.reasons:
            raise ValueError("reasons are required when the filing is returned")
        return self


TransportMode = Literal["road", "rail", "water", "pipeline", "other"]


class SoilTransport(Cites):
    """Law 41; BJ 29: off-site transport, reported in advance to both district EPBs."""

    origin_district: str = Field(min_length=1, max_length=50)
    destination_district: str = Field(min_length=1, max_length=50)
    time: datetime = Field(description="when the transport starts (in the future)")
    mode: TransportMode = Field(description="方式")
    route: str = Text(max_length=2000)
    quantity_m3: float = Field(gt=0, le=1e9)
    destination: str = Text()
    disposal: str = Text(max_length=2000)


class TransportAcknowledgement(Strict):
    notes: str = LongText()


class SecondaryPollutionInspection(Cites):
    """BJ 29: the district EPB checks the secondary-pollution measures during works."""

    compliant: bool
    findings: str = LongText()


class WorksCompleted(Cites):
    completed_on: date | None = None
    summary: str = LongText()


class CommissionEvaluator(Strict):
    """Law 65 另行委托: a firm other than the contractor evaluates the effect."""

    party: Party


class Evaluation(Cites):
    """BJ 30; Law 65: the effect-evaluation report with the evaluator's figures."""

    met: bool = Field(description="the evaluator's own conclusion; R8 checks it against targets")
    results: list[Figure] = Field(default_factory=list, max_length=500)
    report: str = LongText()


class SpotCheck(Cites):
    """BJ 30 抽查; BJ 33 双随机: the city EPB re-checks a randomly chosen evaluation."""

    result: Literal["met", "not_met"]
    notes: str = LongText()


class RemovalApplication(Cites):
    """Law 66: the responsible party or land user applies to leave the list."""

    notes: str = LongText()


class Release(Strict):
    """Law 66; BJ 15, 20: the planning bureau clears the planned use."""

    notes: str = LongText()


ACTION_BODIES: dict[Action, type[Strict]] = {
    Action.closure_screening: ClosureScreening,
    Action.investigation_report: InvestigationReport,
    Action.filing_review: Review,
    Action.risk_assessment_report: RiskAssessmentReport,
    Action.responsibility_determination: ResponsibilityDetermination,
    Action.risk_assessment_review: Review,
    Action.choose_path: ChoosePath,
    Action.control_measures: ControlMeasures,
    Action.monitoring_result: MonitoringResult,
    Action.isolation_measures: IsolationMeasures,
    Action.risk_control_completed: RiskControlCompleted,
    Action.remediation_plan: RemediationPlan,
    Action.plan_filing_review: PlanFilingReview,
    Action.soil_transport: SoilTransport,
    Action.transport_acknowledgement: TransportAcknowledgement,
    Action.secondary_pollution_inspection: SecondaryPollutionInspection,
    Action.works_completed: WorksCompleted,
    Action.commission_evaluator: CommissionEvaluator,
    Action.evaluation: Evaluation,
    Action.spot_check: SpotCheck,
    Action.removal_application: RemovalApplication,
    Action.removal_review: Review,
    Action.release: Release,
}

# Fields the API lifts out of a body before it reaches the workflow (stored once, cited).
LIFTED_FIELDS = frozenset({"samples", "documents"})
