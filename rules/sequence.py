"""Decide one point of the procedure: the rules `landflow.procedure.RULE_SEQUENCE` names
for it, in order, each seeing what the earlier ones decided.

The `decide` activity and the dry-run (`POST /rules/evaluate`) both come through here,
so a parcel and its dry-run decide the same rules in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from landflow.decisions import Decision
from landflow.procedure import RulePoint, RuleSituation, walk
from rules.engine import RulesEngine


def decide_point(
    engine: RulesEngine,
    point: RulePoint,
    facts: Mapping[str, Any],
    *,
    decided: Mapping[str, str] | None = None,
    context: Mapping[str, Any] | None = None,
    decision_id: Callable[[str], str] | None = None,
    now: datetime | None = None,
) -> list[Decision]:
    """Raises KeyError/ValueError when a rule cannot decide on these inputs."""
    made: list[Decision] = []
    ctx = dict(context or {})

    def decide(rule: str) -> str:
        decision = engine.evaluate(
            rule,
            dict(facts),
            ctx,
            decision_id=decision_id(rule) if decision_id else None,
            now=now,
        )
        made.append(decision)
        return decision.outcome

    walk(point, RuleSituation(facts, dict(decided or {}), ctx), decide)
    return made


def dry_run(
    engine: RulesEngine,
    facts: Mapping[str, Any],
    context: Mapping[str, Any],
    now: datetime | None = None,
) -> list[Decision]:
    """What the rules would decide for a parcel along its path through the procedure,
    point by point as the workflow meets them, as far as `context` supplies the steps'
    results (suspected_file, samples, determination, risk_assessment, transport,
    evaluation) and no further than the parcel could go: no transport or evaluation for
    a parcel that is never listed, nothing past an undetermined polluter. Decisions get
    ids `dry-run/<rule>/<n>`; `POST /rules/evaluate` adds `context.include` on top."""
    made: list[Decision] = []
    counts: dict[str, int] = {}

    def number(rule: str) -> str:
        counts[rule] = counts.get(rule, 0) + 1
        return f"dry-run/{rule}/{counts[rule]}"

    def point(at: RulePoint, **ctx: Any) -> dict[str, str]:
        decided = {d.rule: d.outcome for d in made}
        made.extend(
            decide_point(
                engine, at, facts, decided=decided, context=ctx, decision_id=number, now=now
            )
        )
        return {d.rule: d.outcome for d in made}

    outcomes = point(RulePoint.intake)
    if outcomes.get("R3") == "required":
        outcomes = point(
            RulePoint.closure_screening, suspected_file=bool(context.get("suspected_file"))
        )
    samples = context.get("samples")
    if outcomes.get("R1") == "required" and samples:
        farmland = {k: context[k] for k in ("ph", "farmland_type") if context.get(k) is not None}
        outcomes = point(RulePoint.investigation_report, samples=samples, **farmland)
    risk = outcomes.get("R5")
    if risk not in ("assessment_required", "control_or_remediation"):
        return made  # released after the review: no assessment, transport or evaluation
    outcomes = point(RulePoint.filing_accepted)
    determination = context.get("determination")
    if outcomes.get("R4") == "determination_required":
        if not determination:
            return made  # the parcel waits for the determination (Law 48)
        outcomes = point(RulePoint.determination, **determination)
    assessment = context.get("risk_assessment")
    if assessment is None:
        return made
    outcomes = point(
        RulePoint.risk_assessment_accepted,
        risk_level=risk,
        acceptable=bool(assessment.get("acceptable")),
        recommendation=assessment.get("recommendation"),
    )
    if outcomes.get("R11") != "listed":
        return made  # acceptable risk: released, never controlled or remediated
    if context.get("transport"):
        point(RulePoint.soil_transport, transport=context["transport"])
    if context.get("evaluation"):
        point(
            RulePoint.evaluation,
            evaluation=context["evaluation"],
            targets=assessment.get("targets") or [],
            evaluator=context.get("evaluator", ""),
            contractors=context.get("contractors") or [],
        )
    return made
