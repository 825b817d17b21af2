"""The dry-run and a parcel decide the same rules in the same order (one rule sequence).

Every rule case file's facts are registered and walked through the procedure as far as
its context goes: screening, investigation and joint review; the determination (Law 48,
R4 again); the risk assessment and its review (R11); for a listed parcel the remediation
plan and its filing, a soil transport (R7), the works and the effect evaluation (R8). The
rules the workflow's `decide` calls made are compared with what `rules.sequence.dry_run`
decides from the same context, and each context key the walk supplies must have been
reached (a walk that stops early fails, it does not pass on a shorter list).
"""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from landflow.facts import ParcelFacts
from landflow.messages import Refusal
from landflow.procedure import RulePoint
from rules.engine import RulesEngine
from rules.sequence import dry_run
from tests.helpers import (
    CONTRACTOR,
    DIRTY_SAMPLES,
    EVALUATOR,
    POLLUTER,
    SCREENING_SAMPLES,
    TARGETS,
    TRANSPORT,
)
from tests.integration.workflows.conftest import Harness
from tests.integration.workflows.drive import PLAN, by_owner, review

CASES = Path(__file__).resolve().parents[3] / "rules" / "cases"
BASE = {
    "name": "规则用例",
    "district": "朝阳区",
    "area_m2": 1000,
    "current_use": "industrial",
    "right_status": "recovered",
    "planned_use": "residential",
}
PARTY = {"id": "91110105CASEPARTY1", "name": "某公司"}
SAMPLE = [{"item": "铅", "value_mg_kg": 50.0}]
# Rules decided after the filing review: their cases' parcels exceed screening values.
PAST_FILING = ("R4", "R7", "R8", "R11")
# R7, R8 and R11 follow a risk assessment, which needs R4 to name who is responsible.
LISTED = ("R7", "R8", "R11")
# The rule point each context key of `dry_run` leads to.
POINT_OF = {
    "determination": RulePoint.determination,
    "risk_assessment": RulePoint.risk_assessment_accepted,
    "transport": RulePoint.soil_transport,
    "evaluation": RulePoint.evaluation,
}
# Cases whose context a parcel cannot be given (the dry-run can): the workflow refuses the
# action that would carry it, and the test checks that it does.
UNDRIVABLE: dict[str, tuple[str, str]] = {  # case -> (the action refused, why)
    "r04: a determination said named but named nobody": (
        "responsibility_determination",
        "a named determination must name the polluter: the body is refused (Law 48)",
    ),
    "r08: the contractor evaluating its own works does not count": (
        "commission_evaluator",
        "the evaluator is the parcel's contractor: the gate refuses the commission before R8 "
        "can run (Law 65 另行委托)",
    ),
    "r08: a former contractor of the parcel is not independent either": (
        "commission_evaluator",
        "the evaluator is a former contractor of the parcel: the gate refuses the commission "
        "before R8 can run (Law 65 另行委托)",
    ),
    "r08: no targets from the risk assessment, so nothing shows them met": (
        "risk_assessment_report",
        "no reviewed assessment lists a parcel without targets: the body asks them of an "
        "unacceptable risk, the gate of an acceptable one above intervention values "
        "(GB 36600 5.3.3)",
    ),
    "r11: above the intervention value is listed even if the report finds it acceptable": (
        "risk_assessment_report",
        "above intervention values the gate asks the assessment for a recommendation (BJ 19) "
        "and this case's report has none",
    ),
}
# Cases whose context names a point the parcel never reaches (nor does the dry-run).
NOT_REACHED = {
    "r04: undetermined, right transferred, the transferee holds it and remediates": (
        RulePoint.determination,
        "R4.7 names the transferee at the filing review (a transferred right always has "
        "one), so no determination is asked and R4.3 is never reached by a registration",
    ),
}
REACHED: Counter[str] = Counter()  # rule point -> cases compared that reached it
RAN: set[str] = set()


def _cases() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path in sorted(CASES.glob("r*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            found.append((f"{path.stem}: {case['name']}", f"R{int(path.stem[1:])}", case))
    return found


CASE_LIST = _cases()


def _facts(rule: str, case: dict[str, Any]) -> dict[str, Any] | None:
    facts = {**BASE, **(case.get("facts") or {}), "parcel_id": f"C{uuid.uuid4().hex[:10]}"}
    facts.pop("samples", None)
    if facts.get("right_status") in ("held", "to_be_recovered"):
        facts.setdefault("land_user", PARTY)
    if facts.get("right_status") == "transferred":
        facts.setdefault("transferee", {"id": "91110105TRANSFER01", "name": "某受让人"})
    if rule in LISTED:  # without a polluter the parcel would wait for a determination
        facts.setdefault("polluter", {**POLLUTER, "status": "exists"})
    try:
        ParcelFacts.model_validate(facts)
    except ValidationError:
        return None  # a case of one rule's inputs that no registration could have
    return facts


def _walk(rule: str, case: dict[str, Any], facts: dict[str, Any]) -> dict[str, Any]:
    """The case's context in `dry_run`'s keys, with what a parcel needs to reach the
    case's rule: samples over screening (or intervention) values for the rules after the
    filing review, a reviewed risk assessment that lists the parcel for R7 and R8."""
    context = case.get("context") or {}
    samples = context.get("samples") or (case.get("facts") or {}).get("samples")
    if not samples and rule in PAST_FILING:
        below = context.get("risk_level") == "assessment_required"
        samples = SCREENING_SAMPLES if below else DIRTY_SAMPLES
    walk: dict[str, Any] = {
        "suspected_file": bool(context.get("suspected_file")),
        "samples": samples or SAMPLE,
    }
    if facts["current_use"] == "farmland":
        walk.update(ph=context.get("ph", 6.0), farmland_type=context.get("farmland_type", "other"))
    if "determination" in context:
        keys = ("determination", "determined_polluter")
        walk["determination"] = {k: context[k] for k in keys if k in context}
    if rule == "R11":
        keys = ("acceptable", "recommendation")
        walk["risk_assessment"] = {k: context[k] for k in keys if k in context} | {
            "targets": TARGETS
        }
    if rule in ("R7", "R8"):
        targets = context.get("targets", TARGETS)
        walk["risk_assessment"] = {
            "acceptable": False,
            "recommendation": "remediation",
            "targets": targets,
        }
        walk["contractors"] = context.get("contractors") or [CONTRACTOR["id"]]
        walk["evaluator"] = context.get("evaluator") or EVALUATOR["id"]
        for key in ("transport", "evaluation"):
            if key in context:
                walk[key] = context[key]
    return walk


async def _waits_on(harness: Harness, handle: WorkflowHandle, step: str) -> bool:
    blocking = (await harness.state(handle)).blocking()
    return blocking is not None and blocking.step.value == step


async def _drive(
    harness: Harness, handle: WorkflowHandle, facts: dict[str, Any], walk: dict[str, Any]
) -> None:
    """Answer the steps the parcel waits on from `walk`, in the order `dry_run` reads it,
    each by whoever the parcel waits on."""
    if await _waits_on(harness, handle, "closure_screening"):
        result = "suspected" if walk["suspected_file"] else "cleared"
        await by_owner(harness, handle, "closure_screening", {"result": result})
    if await _waits_on(harness, handle, "investigation"):
        farmland = {k: walk[k] for k in ("ph", "farmland_type") if k in walk}
        await by_owner(
            harness,
            handle,
            "investigation_report",
            {"extent_m2": 1, "degree": "x", **farmland},
            samples=harness.samples(walk["samples"]),
            documents=["investigation_report"],
        )
        await review(harness, handle, "filing_review")
    determination = walk.get("determination")
    if determination and await _waits_on(harness, handle, "determination"):
        body = {
            "outcome": determination["determination"],
            "polluter": determination.get("determined_polluter"),
        }
        for _ in ("city_epb", "planning_land concurs"):
            await by_owner(
                harness, handle, "responsibility_determination", body, documents=["determination"]
            )
    assessment = walk.get("risk_assessment")
    if assessment is None or not await _waits_on(harness, handle, "risk_assessment"):
        return
    # dry_run reads a missing `acceptable` as False; the body must say it
    body = {**assessment, "acceptable": bool(assessment.get("acceptable"))}
    await by_owner(
        harness, handle, "risk_assessment_report", body, documents=["risk_assessment_report"]
    )
    await review(harness, handle, "risk_assessment_review")
    if not ("transport" in walk or "evaluation" in walk):
        return
    await by_owner(harness, handle, "choose_path", {"path": "remediation"})
    # the first contractor's plan is returned and the next one filed, so the earlier ones
    # are the parcel's past contractors (as R8's `contractors` lists them, latest first)
    contractors = list(reversed(walk["contractors"]))
    for contractor in contractors:
        party = {"id": contractor, "name": "某修复工程公司"}
        plan = {**PLAN, "contractor": party}
        await by_owner(harness, handle, "remediation_plan", plan, documents=["remediation_plan"])
        filed = contractor == contractors[-1]
        filing = (
            {"decision": "acknowledged"} if filed else {"decision": "returned", "reasons": "换"}
        )
        await by_owner(harness, handle, "plan_filing_review", filing)
    if "transport" in walk:
        transport = {**TRANSPORT, "origin_district": facts["district"], **walk["transport"]}
        await by_owner(harness, handle, "soil_transport", transport, documents=["transport_plan"])
    if "evaluation" in walk:
        await by_owner(harness, handle, "works_completed", {"summary": "完工"})
        evaluator = {"id": walk["evaluator"], "name": "某评估公司"}
        await by_owner(harness, handle, "commission_evaluator", {"party": evaluator})
        await by_owner(
            harness,
            handle,
            "evaluation",
            walk["evaluation"],
            documents=["effect_evaluation_report"],
        )


@pytest.mark.parametrize(("name", "rule", "case"), CASE_LIST, ids=[n for n, _, _ in CASE_LIST])
async def test_dry_run_and_workflow_decide_the_same_rules_in_the_same_order(
    harness: Harness, name: str, rule: str, case: dict[str, Any]
) -> None:
    RAN.add(name)
    facts = _facts(rule, case)
    if facts is None:
        pytest.skip("the case's facts are one rule's inputs, not a registration")
    walk = _walk(rule, case, facts)
    handle = await harness.start(facts)
    if name in UNDRIVABLE:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await _drive(harness, handle, facts, walk)
        action, why = UNDRIVABLE[name]
        cause = refused.value.cause
        assert getattr(cause, "type", None) == Refusal.invalid_body.value, cause
        assert action in str(cause), f"{name}: refused elsewhere than {action}: {cause}"
        pytest.skip(f"{why} ({cause})")
    await _drive(harness, handle, facts, walk)
    reached = {point for point, _ in harness.recorded.points}
    supplied = {POINT_OF[key].value for key in POINT_OF if key in walk}
    if name in NOT_REACHED:
        point, why = NOT_REACHED[name]
        assert point.value not in reached, f"{name}: now reached, so no longer: {why}"
        supplied.discard(point.value)
    assert supplied <= reached, f"{name}: the walk stopped before {supplied - reached}"
    decided = [r for _, rules in harness.recorded.points for r in rules]
    expected = [d.rule for d in dry_run(RulesEngine(), facts, walk)]
    assert decided == expected, name
    REACHED.update(reached)


# How many cases reached each point past the filing review, counted from the case files
# today; a new case may raise them, a walk that stops early lowers them.
AT_LEAST = {
    RulePoint.filing_accepted: 44,  # R4 after the filing review
    RulePoint.determination: 6,  # R4 after a determination
    RulePoint.risk_assessment_accepted: 15,  # R11
    RulePoint.soil_transport: 3,  # R7
    RulePoint.evaluation: 6,  # R8
}


def test_the_walks_reached_r4_after_a_determination_r11_r7_and_r8() -> None:
    if len(RAN) < len(CASE_LIST):
        pytest.skip(f"counted when every case runs ({len(RAN)} of {len(CASE_LIST)} here)")
    reached = {point.value: REACHED[point.value] for point in AT_LEAST}
    print("cases compared past each rule point:", reached)
    assert all(reached[point.value] >= n for point, n in AT_LEAST.items()), reached
