"""The procedure, declared once: every step, who owes it, what it lets them do, which
deadline it runs under and which rules are decided when it is done.

The workflow, the gate, `next_actions`, the inboxes, the dry-run, the workbench's
diagram and the README's stage table all read these tables. A new step is a row here
(and a line in the workflow that awaits it); nothing else names its owner or actions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from landflow.vocabulary import PARTY_ROLES, Action, Role, Stage, Step


class Owner(StrEnum):
    """Who owes a step, resolved on the parcel when the step opens."""

    reserve_agency = "reserve_agency"
    city_epb = "city_epb"
    planning_land = "planning_land"
    district_epb = "district_epb"  # of the parcel's district
    district_government = "district_government"  # of the parcel's district
    investigator = "investigator"  # R2's outcome (BJ 17)
    responsible = "responsible"  # R4's outcome, or the determination (Law 45, 48)
    land_user = "land_user"  # the parcel's land-use right holder (BJ 19)
    evaluator = "evaluator"  # the firm the responsible party commissioned (Law 65)
    transport_epbs = "transport_epbs"  # origin and destination district EPBs (BJ 29; Law 41)


# The roles an owner can turn out to be once the rules have named it: a caller of one of
# them asking before that is early (409, the step is not open), not out of role (403).
OWNER_ROLES: dict[Owner, frozenset[Role]] = {
    Owner.investigator: frozenset({Role.land_user, Role.reserve_agency, Role.district_government}),
    Owner.responsible: frozenset(
        {Role.responsible_party, Role.land_user, Role.district_government}
    ),
    Owner.land_user: frozenset({Role.land_user}),
    Owner.evaluator: frozenset({Role.third_party_evaluator}),
    Owner.transport_epbs: frozenset({Role.district_epb}),
}


class RulePoint(StrEnum):
    """A moment in the procedure after which rules are decided."""

    intake = "intake"
    closure_screening = "closure_screening"
    investigation_report = "investigation_report"
    filing_accepted = "filing_accepted"
    determination = "determination"
    risk_assessment_accepted = "risk_assessment_accepted"
    soil_transport = "soil_transport"
    evaluation = "evaluation"


@dataclass(frozen=True)
class Answer:
    """An action a step accepts from one owner.

    `ends_step`: the action answers the step (the procedure moves on); otherwise it is
    recorded while the step stays open (a soil transport during works). `only_after`
    names a condition the workflow states before it opens the step (a revised plan is
    open in works only after a failed evaluation or spot-check)."""

    action: Action
    by: Owner
    ends_step: bool = True
    only_after: str | None = None


@dataclass(frozen=True)
class StepSpec:
    step: Step
    stage: Stage
    answers: tuple[Answer, ...]
    clause: str
    title_zh: str
    joint: bool = False  # every owner gives an opinion; one `returned` decides (Law 59 ¶3)
    blocking: bool = True  # False: a side task in an inbox that never holds the procedure
    rules_after: RulePoint | None = None  # the rules decided when the step is done

    @property
    def deadline_key(self) -> str:
        """The policy file's entry for this step's deadline (one per step)."""
        return self.step.value

    def owners(self) -> tuple[Owner, ...]:
        return tuple(dict.fromkeys(a.by for a in self.answers))

    def actions(self) -> tuple[Action, ...]:
        return tuple(dict.fromkeys(a.action for a in self.answers))

    def answer(self, action: Action, owner: Owner) -> Answer | None:
        return next((a for a in self.answers if a.action == action and a.by == owner), None)


def _review(
    step: Step,
    stage: Stage,
    action: Action,
    clause: str,
    title: str,
    rules_after: RulePoint | None = None,
) -> StepSpec:
    """A joint review by the city EPB with the planning bureau (Law 59 ¶3, 61, 66; BJ 17)."""
    return StepSpec(
        step,
        stage,
        (Answer(action, Owner.city_epb), Answer(action, Owner.planning_land)),
        clause,
        title,
        joint=True,
        rules_after=rules_after,
    )


STEPS: tuple[StepSpec, ...] = (
    StepSpec(
        Step.closure_screening,
        Stage.closure_screening,
        (Answer(Action.closure_screening, Owner.district_epb),),
        "BJ 16",
        "关停企业原址污染筛查",
        rules_after=RulePoint.closure_screening,
    ),
    StepSpec(
        Step.investigation,
        Stage.investigation,
        (Answer(Action.investigation_report, Owner.investigator),),
        "BJ 17; Law 59, 67",
        "提交土壤污染状况调查报告",
        rules_after=RulePoint.investigation_report,
    ),
    _review(
        Step.filing_review,
        Stage.filing,
        Action.filing_review,
        "BJ 17; Law 59 ¶3",
        "调查报告评审",
        rules_after=RulePoint.filing_accepted,
    ),
    StepSpec(
        Step.determination,
        Stage.risk_assessment,
        (Answer(Action.responsibility_determination, Owner.city_epb),),
        "Law 48",
        "认定土壤污染责任人",
    ),
    StepSpec(
        Step.determination_concurrence,
        Stage.risk_assessment,
        (Answer(Action.responsibility_determination, Owner.planning_land),),
        "Law 48",
        "会同认定土壤污染责任人",
        rules_after=RulePoint.determination,
    ),
    StepSpec(
        Step.risk_assessment,
        Stage.risk_assessment,
        (Answer(Action.risk_assessment_report, Owner.responsible),),
        "Law 60",
        "提交土壤污染风险评估报告",
    ),
    _review(
        Step.risk_assessment_review,
        Stage.risk_assessment,
        Action.risk_assessment_review,
        "Law 61",
        "风险评估报告评审",
        rules_after=RulePoint.risk_assessment_accepted,
    ),
    StepSpec(
        Step.choose_path,
        Stage.listing,
        (Answer(Action.choose_path, Owner.district_government),),
        "BJ 19",
        "确定风险管控或治理修复",
    ),
    StepSpec(
        Step.control_measures,
        Stage.risk_control,
        (Answer(Action.control_measures, Owner.district_government),),
        "BJ 19; Law 63",
        "划定管控区域、设立标识、发布公告",
    ),
    StepSpec(
        Step.monitoring,
        Stage.risk_control,
        (
            Answer(Action.monitoring_result, Owner.responsible),
            Answer(Action.risk_control_completed, Owner.responsible),
            Answer(Action.choose_path, Owner.district_government),
        ),
        "Law 62; BJ 19",
        "定期报告风险管控监测结果",
    ),
    StepSpec(
        Step.isolation,
        Stage.risk_control,
        (Answer(Action.isolation_measures, Owner.land_user),),
        "BJ 19",
        "污染扩散：采取隔离、阻断措施",
    ),
    StepSpec(
        Step.remediation_plan,
        Stage.remediation,
        (Answer(Action.remediation_plan, Owner.responsible),),
        "Law 64; BJ 28",
        "编制并备案修复方案",
    ),
    StepSpec(
        Step.plan_filing,
        Stage.remediation,
        (Answer(Action.plan_filing_review, Owner.district_epb),),
        "Law 64",
        "修复方案备案",
    ),
    StepSpec(
        Step.works,
        Stage.remediation,
        (
            Answer(Action.works_completed, Owner.responsible),
            Answer(Action.remediation_plan, Owner.responsible, only_after="evaluation_failed"),
            Answer(Action.soil_transport, Owner.responsible, ends_step=False),
            Answer(Action.secondary_pollution_inspection, Owner.district_epb, ends_step=False),
        ),
        "BJ 29; Law 41, 64",
        "实施修复工程",
        rules_after=RulePoint.soil_transport,
    ),
    StepSpec(
        Step.transport_acknowledgement,
        Stage.remediation,
        (Answer(Action.transport_acknowledgement, Owner.transport_epbs),),
        "BJ 29; Law 41",
        "污染土壤转运报告签收",
        blocking=False,
    ),
    StepSpec(
        Step.commission_evaluator,
        Stage.evaluation,
        (Answer(Action.commission_evaluator, Owner.responsible),),
        "Law 65 (另行委托); BJ 30",
        "委托第三方效果评估机构",
    ),
    StepSpec(
        Step.evaluation,
        Stage.evaluation,
        (Answer(Action.evaluation, Owner.evaluator),),
        "Law 65; BJ 30",
        "提交效果评估报告",
        rules_after=RulePoint.evaluation,
    ),
    StepSpec(
        Step.spot_check,
        Stage.evaluation,
        (Answer(Action.spot_check, Owner.city_epb),),
        "BJ 30 (抽查); BJ 33 (双随机)",
        "效果评估抽查",
    ),
    StepSpec(
        Step.removal_application,
        Stage.release,
        (
            Answer(Action.removal_application, Owner.responsible),
            Answer(Action.removal_application, Owner.land_user),
        ),
        "Law 66 ¶1",
        "申请移出名录",
    ),
    _review(
        Step.removal_review,
        Stage.release,
        Action.removal_review,
        "Law 66 ¶2",
        "效果评估报告评审与移出名录",
    ),
    StepSpec(
        Step.release,
        Stage.release,
        (Answer(Action.release, Owner.planning_land),),
        "Law 66; BJ 15, 20",
        "规划用途放行供地",
    ),
)

PROCEDURE: Mapping[Step, StepSpec] = {spec.step: spec for spec in STEPS}
STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)


def steps_of(stage: Stage) -> tuple[StepSpec, ...]:
    return tuple(s for s in STEPS if s.stage == stage)


def steps_for(action: Action) -> tuple[StepSpec, ...]:
    return tuple(s for s in STEPS if action in s.actions())


# --- how the stages connect (the workbench's diagram, the README's picture) ----------


@dataclass(frozen=True)
class Flow:
    source: Stage
    target: Stage
    label: str
    clause: str
    loop: bool = False  # a way back (returned, failed), drawn as such


FLOWS: tuple[Flow, ...] = (
    Flow(Stage.intake, Stage.closure_screening, "R3 关停企业", "BJ 16"),
    Flow(Stage.intake, Stage.investigation, "R1 需调查", "BJ 17; Law 59, 67"),
    Flow(Stage.intake, Stage.release, "R1 无需调查", "BJ 17"),
    Flow(Stage.closure_screening, Stage.investigation, "R1 需调查", "BJ 16-17"),
    Flow(Stage.closure_screening, Stage.release, "R1 无需调查", "BJ 17"),
    Flow(Stage.investigation, Stage.filing, "调查报告", "Law 59 ¶3"),
    Flow(Stage.filing, Stage.investigation, "退回", "Law 59 ¶3", loop=True),
    Flow(Stage.filing, Stage.release, "未超筛选值", "GB 36600 4.2; BJ 17"),
    Flow(Stage.filing, Stage.risk_assessment, "超筛选值", "Law 60"),
    Flow(Stage.risk_assessment, Stage.release, "风险可接受", "Law 61"),
    Flow(Stage.risk_assessment, Stage.listing, "R11 列入名录", "Law 61; GB 36600 5.3.3"),
    Flow(Stage.listing, Stage.risk_control, "风险管控", "BJ 19; Law 62"),
    Flow(Stage.listing, Stage.remediation, "治理修复", "BJ 19; Law 64"),
    Flow(Stage.risk_control, Stage.remediation, "决定开发", "BJ 19"),
    Flow(Stage.risk_control, Stage.evaluation, "达到管控目标", "Law 65"),
    Flow(Stage.remediation, Stage.evaluation, "修复完成", "Law 65; BJ 30"),
    Flow(Stage.evaluation, Stage.remediation, "未达目标/抽查不合格", "BJ 30", loop=True),
    Flow(Stage.evaluation, Stage.risk_control, "未达管控目标", "BJ 30", loop=True),
    Flow(Stage.evaluation, Stage.release, "达到目标", "Law 66"),
    Flow(Stage.release, Stage.remediation, "移出评审退回", "Law 66 ¶2", loop=True),
    Flow(Stage.release, Stage.risk_control, "移出评审退回", "Law 66 ¶2", loop=True),
    Flow(Stage.release, Stage.released, "放行", "Law 66; BJ 15"),
)


# --- amendments: changes parcels registered earlier do not see -------------------------


class Amendment(StrEnum):
    """A change to the procedure after parcels were registered under it. A registration
    names the amendments it starts under in its start input (`ParcelStart.register`), and
    carries them across continue-as-new: a parcel registered earlier goes on, and replays,
    as it began. (Unlike `workflow.patched`, this writes no marker and no search-attribute
    upsert into every parcel's history.)"""

    law_67_registry_notice = "law-67-real-estate-registry-notice"
    """Law 67: a key supervised unit's investigation report goes to the real-estate
    registry (the first registrations never sent it)."""
    removal_return_reopens_works = "removal-review-returned-reopens-the-works"
    """Law 66 ¶2: a returned removal review is like a failed evaluation: control or
    remediation continues and a new evaluation follows (it used to ask for a new
    application with nothing changed)."""
    quiet_intake = "no-empty-search-attributes-at-intake"
    """The first sync upserted the unset search attributes as unset: an event (and a
    visibility write) per parcel that changed nothing."""
    unmarked_start = "started-answers-after-the-first-projection-unmarked"
    """The registration's answer waits for the first projection without asking
    `workflow.patched` (whose marker and TemporalChangeVersion upsert every parcel wrote:
    a visibility write costs the dev server about 7 ms of CPU)."""


# --- which rules are decided when (shared by the workflow and the dry-run) ------------


@dataclass(frozen=True)
class RuleSituation:
    """What a condition may look at: the facts, what was decided so far, the moment's context."""

    facts: Mapping[str, Any]
    decided: Mapping[str, str]  # rule -> latest outcome on this parcel
    context: Mapping[str, Any] = field(default_factory=dict)


Condition = Callable[[RuleSituation], bool]


@dataclass(frozen=True)
class RuleCall:
    rule: str
    when: Condition = lambda _: True
    because: str = "always"


def _outcome(rule: str, *outcomes: str) -> Condition:
    return lambda s: s.decided.get(rule) in outcomes


def _both(first: Condition, second: Condition) -> Condition:
    return lambda s: first(s) and second(s)


def _farmland(s: RuleSituation) -> bool:
    return s.facts.get("current_use") == "farmland"


_NO_SCREENING = _outcome("R3", "not_required")
_INVESTIGATE = _outcome("R1", "required")

RULE_SEQUENCE: Mapping[RulePoint, tuple[RuleCall, ...]] = {
    RulePoint.intake: (
        RuleCall("R3"),
        RuleCall("R6"),
        # without a closure screening R1 and R2 follow at once, with no suspected file
        RuleCall("R1", _NO_SCREENING, "when R3 opens no closure screening"),
        RuleCall("R2", _both(_NO_SCREENING, _INVESTIGATE), "when R1 requires an investigation"),
    ),
    RulePoint.closure_screening: (
        RuleCall("R1"),
        RuleCall("R2", _INVESTIGATE, "when R1 requires an investigation"),
    ),
    RulePoint.investigation_report: (
        RuleCall("R5"),
        RuleCall("R9"),
        RuleCall("R10", _farmland, "on farmland (GB 15618; BJ 21)"),
    ),
    RulePoint.filing_accepted: (
        RuleCall(
            "R4",
            _outcome("R5", "assessment_required", "control_or_remediation"),
            "when the reviewed investigation exceeds screening values (Law 60)",
        ),
    ),
    RulePoint.determination: (RuleCall("R4"),),
    RulePoint.risk_assessment_accepted: (RuleCall("R11"),),
    RulePoint.soil_transport: (RuleCall("R7"),),
    RulePoint.evaluation: (RuleCall("R8"),),
}


def walk(point: RulePoint, situation: RuleSituation, decide: Callable[[str], str]) -> list[str]:
    """Decide the rules of `point` in order and return their ids. A condition may read an
    outcome decided earlier at the same point (R2 reads R1), so each is checked just
    before its turn; `decide(rule)` returns the outcome."""
    decided = dict(situation.decided)
    fired: list[str] = []
    for call in RULE_SEQUENCE[point]:
        if call.when(RuleSituation(situation.facts, decided, situation.context)):
            decided[call.rule] = decide(call.rule)
            fired.append(call.rule)
    return fired


def role_of(owner: Owner) -> Role | None:
    """The role of a fixed owner; owners resolved from rules or parties return None."""
    try:
        role = Role(owner.value)
    except ValueError:
        return None
    return None if role in PARTY_ROLES else role
