"""Which rules are decided when: `landflow.procedure.walk` over RULE_SEQUENCE, and
`rules.sequence.decide_point` / `dry_run` with the real engine (the workflow's `decide`
activity and `POST /rules/evaluate` both come through them)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from landflow.procedure import RULE_SEQUENCE, RulePoint, RuleSituation, walk
from rules.engine import RulesEngine
from rules.sequence import decide_point, dry_run
from tests.helpers import (
    CONTRACTOR,
    DIRTY_SAMPLES,
    EVALUATOR,
    LAND_USER,
    MET_RESULTS,
    SCREENING_SAMPLES,
    TARGETS,
    TRANSPORT,
    clean_facts,
    facts,
    held_facts,
)
from tests.unit.rules.test_tables import CASES

NOW = datetime(2027, 1, 15, 9, 30, tzinfo=UTC)
EXCEEDING = ("assessment_required", "control_or_remediation")
# every (point, rule) in the order the procedure meets them
ORDER = [(point, call.rule) for point, calls in RULE_SEQUENCE.items() for call in calls]


@pytest.fixture(scope="module")
def engine() -> RulesEngine:
    return RulesEngine()


def scripted(
    point: RulePoint,
    outcomes: Mapping[str, str],
    facts: Mapping[str, Any] | None = None,
    decided: Mapping[str, str] | None = None,
) -> tuple[list[str], list[str]]:
    """Walk `point` with the outcomes given per rule; (rules returned, rules asked)."""
    asked: list[str] = []

    def decide(rule: str) -> str:
        asked.append(rule)
        return outcomes[rule]

    fired = walk(point, RuleSituation(facts or {}, dict(decided or {})), decide)
    return fired, asked


# --- walk: the conditions of RULE_SEQUENCE ---------------------------------------------


def test_points_follow_the_procedure_and_every_rule_has_its_turn(engine: RulesEngine) -> None:
    assert list(RULE_SEQUENCE) == list(RulePoint)
    assert {rule for _, rule in ORDER} == set(engine.tables)
    assert all(call.because for calls in RULE_SEQUENCE.values() for call in calls)


@pytest.mark.parametrize(
    ("r3", "r1", "expected"),
    [
        ("required", "required", ["R3", "R6"]),
        ("required", "not_required", ["R3", "R6"]),
        ("not_required", "required", ["R3", "R6", "R1", "R2"]),
        ("not_required", "not_required", ["R3", "R6", "R1"]),
    ],
)
def test_intake_runs_r1_and_r2_only_without_a_closure_screening(
    r3: str, r1: str, expected: list[str]
) -> None:
    outcomes = {"R3": r3, "R6": "not_required", "R1": r1, "R2": "land_user"}
    assert scripted(RulePoint.intake, outcomes) == (expected, expected)


@pytest.mark.parametrize(("r1", "expected"), [("required", ["R1", "R2"]), ("not_required", ["R1"])])
def test_r2_only_when_r1_requires_an_investigation(r1: str, expected: list[str]) -> None:
    outcomes = {"R1": r1, "R2": "reserve_agency"}
    assert scripted(RulePoint.closure_screening, outcomes)[0] == expected
    # R2 reads R1 as decided at this point, not an earlier outcome of R1
    earlier = {"R1": "not_required" if r1 == "required" else "required"}
    assert scripted(RulePoint.closure_screening, outcomes, decided=earlier)[0] == expected


@pytest.mark.parametrize(
    ("current_use", "expected"),
    [
        ("farmland", ["R5", "R9", "R10"]),
        ("industrial", ["R5", "R9"]),
        ("residential", ["R5", "R9"]),
        (None, ["R5", "R9"]),
    ],
)
def test_r10_only_on_farmland(current_use: str | None, expected: list[str]) -> None:
    outcomes = {"R5": "negligible", "R9": "none", "R10": "priority_protection"}
    facts = {"current_use": current_use} if current_use else {}
    assert scripted(RulePoint.investigation_report, outcomes, facts)[0] == expected


@pytest.mark.parametrize(
    ("r5", "expected"),
    [
        ("assessment_required", ["R4"]),
        ("control_or_remediation", ["R4"]),
        ("negligible", []),
        (None, []),
    ],
)
def test_r4_only_when_r5_exceeds(r5: str | None, expected: list[str]) -> None:
    decided = {"R5": r5} if r5 else {}
    outcomes = {"R4": "polluter"}
    assert scripted(RulePoint.filing_accepted, outcomes, decided=decided)[0] == expected


@pytest.mark.parametrize(
    ("point", "rule"),
    [
        (RulePoint.determination, "R4"),
        (RulePoint.risk_assessment_accepted, "R11"),
        (RulePoint.soil_transport, "R7"),
        (RulePoint.evaluation, "R8"),
    ],
)
def test_single_rule_points(point: RulePoint, rule: str) -> None:
    assert scripted(point, {rule: "any"}) == ([rule], [rule])


# --- decide_point with the engine -----------------------------------------------------


def test_intake_of_a_closed_plant_waits_for_its_screening(engine: RulesEngine) -> None:
    made = decide_point(engine, RulePoint.intake, facts("p1"), now=NOW)
    assert [(d.rule, d.outcome) for d in made] == [("R3", "required"), ("R6", "required")]
    assert all(d.evaluated_at == NOW for d in made)


def test_intake_of_a_running_plant_decides_the_investigation(engine: RulesEngine) -> None:
    made = decide_point(
        engine, RulePoint.intake, held_facts("p2"), decision_id=lambda rule: f"x/{rule}"
    )
    assert [(d.id, d.rule, d.outcome) for d in made] == [
        ("x/R3", "R3", "not_required"),
        ("x/R6", "R6", "not_required"),
        ("x/R1", "R1", "required"),
        ("x/R2", "R2", "land_user"),
    ]


def test_intake_of_land_needing_nothing(engine: RulesEngine) -> None:
    made = decide_point(engine, RulePoint.intake, clean_facts("p3"))
    assert [(d.rule, d.outcome) for d in made] == [
        ("R3", "not_required"),
        ("R6", "not_required"),
        ("R1", "not_required"),
    ]


def test_the_screening_result_reaches_r1(engine: RulesEngine) -> None:
    kept = clean_facts("p4")  # nothing else would require an investigation
    made = decide_point(
        engine,
        RulePoint.closure_screening,
        kept,
        decided={"R3": "required", "R1": "not_required"},
        context={"suspected_file": True},
    )
    assert [(d.rule, d.row, d.outcome) for d in made] == [
        ("R1", "R1.1", "required"),
        ("R2", "R2.3", "land_user"),
    ]


def test_the_investigation_report_on_farmland(engine: RulesEngine) -> None:
    farm = facts(
        "p5",
        current_use="farmland",
        industry=None,
        enterprise_closed=False,
        right_status="held",
        land_user=LAND_USER,
        planned_use="B",
    )
    samples = [{"item": "镉", "value_mg_kg": 2.5}]
    made = decide_point(
        engine,
        RulePoint.investigation_report,
        farm,
        context={"samples": samples, "ph": 6.0, "farmland_type": "paddy"},
    )
    assert [(d.rule, d.outcome) for d in made] == [
        ("R5", "negligible"),  # class 2 screening for Cd is 65
        ("R9", "focus"),
        ("R10", "strict_control"),
    ]


def test_a_rule_that_cannot_decide_stops_the_point(engine: RulesEngine) -> None:
    broken = held_facts("p6")
    del broken["right_status"]
    with pytest.raises(ValueError, match="right_status=None"):
        decide_point(engine, RulePoint.intake, broken)


# --- dry_run --------------------------------------------------------------------------


def _is_ordered(rules: list[str]) -> bool:
    """`rules` is a subsequence of ORDER: each rule at a point no earlier than the last."""
    position = 0
    for rule in rules:
        while position < len(ORDER) and ORDER[position][1] != rule:
            position += 1
        if position == len(ORDER):
            return False
        position += 1
    return True


def _check_path(made: list[Any], facts: Mapping[str, Any]) -> None:
    """What holds for every dry-run, whatever the parcel."""
    rules = [d.rule for d in made]
    assert _is_ordered(rules), rules
    counts: dict[str, int] = {}
    latest: dict[str, str] = {}
    for decision in made:
        counts[decision.rule] = counts.get(decision.rule, 0) + 1
        assert decision.id == f"dry-run/{decision.rule}/{counts[decision.rule]}"
        if decision.rule == "R2":
            assert latest.get("R1") == "required", rules
        if decision.rule == "R4":
            assert latest.get("R5") in EXCEEDING, rules
        if decision.rule in ("R5", "R9"):
            assert latest.get("R1") == "required", rules
        if decision.rule == "R10":
            assert facts.get("current_use") == "farmland", rules
        if decision.rule == "R11":
            assert latest.get("R4") is not None, rules
        latest[decision.rule] = decision.outcome
    assert counts.get("R3") == counts.get("R6") == 1
    assert all(n == 1 for r, n in counts.items() if r not in ("R1", "R2", "R4"))


FULL_CONTEXT: dict[str, Any] = {
    "suspected_file": True,
    "samples": DIRTY_SAMPLES,
    "ph": 6.5,
    "risk_assessment": {"acceptable": False, "recommendation": "remediation", "targets": TARGETS},
    "transport": TRANSPORT,
    "evaluation": {"met": True, "results": MET_RESULTS},
    "evaluator": EVALUATOR["id"],
    "contractors": [CONTRACTOR["id"]],
}


def test_dry_run_of_the_whole_chain(engine: RulesEngine) -> None:
    unknown = facts("p7", polluter={"status": "unknown"})
    context = {
        **FULL_CONTEXT,
        "determination": {
            "determination": "named",
            "determined_polluter": {
                "id": "91110105CHEMICAL01",
                "name": "某化工厂",
                "status": "exists",
            },
        },
    }
    made = dry_run(engine, unknown, context, now=NOW)
    assert [(d.rule, d.outcome) for d in made] == [
        ("R3", "required"),
        ("R6", "required"),
        ("R1", "required"),
        ("R2", "reserve_agency"),
        ("R5", "control_or_remediation"),
        ("R9", "focus"),
        ("R4", "determination_required"),
        ("R4", "polluter"),
        ("R11", "listed"),
        ("R7", "report_required"),
        ("R8", "met"),
    ]
    assert made[7].details["party_id"] == "91110105CHEMICAL01"
    assert [d.id for d in made if d.rule == "R4"] == ["dry-run/R4/1", "dry-run/R4/2"]
    _check_path(made, unknown)


def test_dry_run_stops_where_the_rules_say(engine: RulesEngine) -> None:
    below = {**FULL_CONTEXT, "samples": [{"item": "铅", "value_mg_kg": 50}]}
    del below["transport"], below["evaluation"]
    made = dry_run(engine, facts("p8"), below)
    assert [(d.rule, d.outcome) for d in made][-2:] == [("R5", "negligible"), ("R9", "focus")]
    assert "R4" not in {d.rule for d in made}


def test_dry_run_waits_for_the_determination_it_is_not_given(engine: RulesEngine) -> None:
    """The workflow waits at the determination step (Law 48) while R4 says
    determination_required; the risk assessment and what follows cannot come before it."""
    made = dry_run(engine, facts("p9", polluter={"status": "unknown"}), FULL_CONTEXT)
    assert [(d.rule, d.outcome) for d in made][-1] == ("R4", "determination_required"), [
        d.rule for d in made
    ]


@pytest.mark.parametrize(
    ("parcel", "assessment"),
    [
        pytest.param(clean_facts("p10"), FULL_CONTEXT["risk_assessment"], id="no investigation"),
        pytest.param(
            facts("p11"),
            {"acceptable": True, "targets": []},
            id="not listed",
        ),
    ],
)
def test_dry_run_of_a_parcel_never_listed_meets_no_transport_or_evaluation(
    engine: RulesEngine, parcel: dict[str, Any], assessment: dict[str, Any]
) -> None:
    """Soil transport (R7) is reported during remediation works and the effect evaluation
    (R8) follows control or remediation: a parcel released before listing meets neither."""
    context = {**FULL_CONTEXT, "samples": SCREENING_SAMPLES, "risk_assessment": assessment}
    rules = [d.rule for d in dry_run(engine, parcel, context)]
    assert not {"R7", "R8"} & set(rules), rules


def _dry_run_context(case: dict[str, Any]) -> dict[str, Any]:
    """A case's context in the dry-run's terms, over the full chain's context."""
    given = case.get("context") or {}
    context = copy.deepcopy(FULL_CONTEXT)
    for key in ("suspected_file", "samples", "ph", "farmland_type", "transport"):
        if key in given:
            context[key] = given[key]
    for key in ("evaluator", "contractors"):
        if key in given:
            context[key] = given[key]
    if "evaluation" in given:
        context["evaluation"] = given["evaluation"]
    if "targets" in given:
        context["risk_assessment"]["targets"] = given["targets"]
    if "acceptable" in given:
        context["risk_assessment"]["acceptable"] = given["acceptable"]
        context["risk_assessment"]["recommendation"] = given.get("recommendation")
    if "determination" in given:
        context["determination"] = {
            k: given[k] for k in ("determination", "determined_polluter") if k in given
        }
    return context


@pytest.mark.parametrize(
    ("rule", "case"), CASES, ids=[f"{rule}: {case['name']}" for rule, case in CASES]
)
def test_every_case_dry_runs_in_the_declared_order(
    engine: RulesEngine, rule: str, case: dict[str, Any]
) -> None:
    """A closed coking plant (tests.helpers.facts) with the case's facts over it."""
    parcel = {**facts("case"), "land_user": LAND_USER, **(case.get("facts") or {})}
    made = dry_run(engine, parcel, _dry_run_context(case))
    _check_path(made, parcel)
