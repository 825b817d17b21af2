"""Decisions explained in Chinese on Chinese pages, from the decision's record; the
recorded English stays what the history keeps and what English pages show."""

from __future__ import annotations

import ast
import re
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.web import explain, i18n
from rules.engine import TABLES_DIR, RulesEngine
from rules.features import RULE_INPUTS

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2027, 1, 15, 9, 30, tzinfo=UTC)
CASES = [
    (f"R{int(path.stem[1:])}", case)
    for path in sorted((TABLES_DIR.parent / "cases").glob("r*.yaml"))
    for case in yaml.safe_load(path.read_text(encoding="utf-8"))
]
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")
# Sentences the procedures record as list reasons (workflows/parcel.py, the legacy one).
FIXED_REASONS = [
    "suspected-contaminated-parcel file",
    "investigation reviewed: no exceedance",
    "risk assessment reviewed: listed",
    "risk assessment reviewed: not_listed",
    "targets met; removed by review (Law 66 ¶2)",
    "risk not acceptable for the planned use (Law 61)",
    "released for the planned use (Law 66)",
]


@pytest.fixture(scope="module")
def rules() -> RulesEngine:
    return RulesEngine()


def _decide(rules: RulesEngine, rule: str, case: dict[str, Any]) -> Any:
    return rules.evaluate(
        rule, case.get("facts") or {}, case.get("context") or {}, decision_id="d", now=NOW
    )


@pytest.mark.parametrize(
    ("rule", "case"), CASES, ids=[f"{rule}: {case['name']}" for rule, case in CASES]
)
def test_every_case_is_explained_in_chinese_from_its_record(
    rules: RulesEngine, rule: str, case: dict[str, Any]
) -> None:
    decision = _decide(rules, rule, case)
    row = rules.tables[rule].row_by_id[decision.row]
    with i18n.using("zh"):
        shown = explain.explanation(rules, decision)
    assert shown != decision.explanation and re.search(r"[\u4e00-\u9fff]", shown), shown
    # each placeholder holds what the rule saw (recovered from inputs and details)
    seen = RULE_INPUTS[rule](case.get("facts") or {}, case.get("context") or {})
    fields = {f for _, f, _, _ in string.Formatter().parse(row.because_zh) if f}
    with i18n.using("zh"):
        expected = row.because_zh.format(**{f: explain._shown(f, seen[f]) for f in fields})
    assert shown == expected
    # no English word of the sentence's own; names and codes the facts gave may be Latin
    given = " ".join(str(seen[f]) for f in fields)
    assert [w for w in LATIN_WORD.findall(shown) if w not in given] == [], shown
    with i18n.using("en"):
        assert explain.explanation(rules, decision) == decision.explanation


def test_values_are_shown_in_words(rules: RulesEngine) -> None:
    with i18n.using("zh"):
        assert explain._shown("right_status", "recovered") == "已收回"
        assert explain._shown("recommendation", "remediation") == "治理修复"
        assert explain._shown("planned_use", "R") == "居住用地（R）"
        assert explain._shown("failing_items", "Benzo[a]pyrene, 铅") == "苯并[a]芘、铅"
        assert explain._shown("evaluator", "(none commissioned)") == "（未委托）"


def test_a_brief_without_its_record_keeps_the_english(rules: RulesEngine) -> None:
    """The workflow state keeps a brief (no inputs): R5's land class is in its details,
    R1's planned use is not, so R1's explanation waits for the registry's record."""
    r5 = _decide(rules, "R5", next(c for r, c in CASES if r == "R5")).brief()
    r1 = _decide(rules, "R1", next(c for r, c in CASES if c["expected"]["row"] == "R1.4"))
    assert "{planned_use}" in rules.tables["R1"].row_by_id[r1.row].because_zh
    with i18n.using("zh"):
        assert "类用地" in explain.explanation(rules, r5)
        assert explain.explanation(rules, r1.brief()) == r1.explanation
        assert "居住用地（R）" in explain.explanation(rules, r1)


def test_recorded_sentences_by_their_decision_or_the_catalog(rules: RulesEngine) -> None:
    listed = _decide(rules, "R11", next(c for r, c in CASES if r == "R11"))
    say = explain.Sentences(rules, [listed])
    with i18n.using("zh"):
        assert say(listed.explanation) == explain.explanation(rules, listed)
        for reason in FIXED_REASONS:
            shown = say(reason)
            assert shown and re.search(r"[\u4e00-\u9fff]", shown), reason
        assert say(None) is None
        assert say("an unknown sentence") == "an unknown sentence"
    with i18n.using("en"):
        assert say(listed.explanation) == listed.explanation
        assert say(FIXED_REASONS[0]) == FIXED_REASONS[0]


def _literal_reasons(path: Path) -> set[str]:
    """The string literals a workflow passes as the reason of list_enter / list_leave."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("list_enter", "list_leave", "_change_lists")
        ):
            for arg in node.args[1:2]:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
    return found


def test_every_fixed_list_reason_of_the_procedures_is_translated() -> None:
    recorded = _literal_reasons(ROOT / "workflows" / "parcel.py")
    recorded |= _literal_reasons(ROOT / "workflows" / "legacy" / "parcel.py")
    assert recorded, "no list reasons found: has the procedure's call changed?"
    assert recorded <= set(FIXED_REASONS), recorded - set(FIXED_REASONS)


def test_every_law_over_plan_note_is_translated(rules: RulesEngine) -> None:
    notes = {
        row.law_over_plan
        for table in rules.tables.values()
        for row in (*table.rows, table.default)
        if row.law_over_plan
    }
    assert notes
    with i18n.using("zh"):
        assert [n for n in notes if i18n.gettext(n) == n] == []
