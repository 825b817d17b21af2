"""Every decision table against its cases in rules/cases/*.yaml, through durable-rules.

One generic test: a new row needs a new case (data), not new test code. Each case says
the outcome, the row that must fire and its citation; the citation is also checked
against the table, so a case cannot drift from the declaration it tests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.engine import TABLES_DIR, RulesEngine, Table

CASES_DIR = TABLES_DIR.parent / "cases"
NOW = datetime(2027, 1, 15, 9, 30, tzinfo=UTC)


def _load_cases() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for path in sorted(CASES_DIR.glob("r*.yaml")):
        rule = f"R{int(path.stem[1:])}"
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            cases.append((rule, case))
    return cases


CASES = _load_cases()


@pytest.fixture(scope="module")
def engine() -> RulesEngine:
    return RulesEngine()


def _row_citation(table: Table, row_id: str) -> str:
    rows = {r.id: r for r in (*table.rows, table.default)}
    assert row_id in rows, f"{table.rule} has no row {row_id}"
    return rows[row_id].citation


@pytest.mark.parametrize(
    ("rule", "case"), CASES, ids=[f"{rule}: {case['name']}" for rule, case in CASES]
)
def test_case(engine: RulesEngine, rule: str, case: dict[str, Any]) -> None:
    expected = case["expected"]
    decision = engine.evaluate(
        rule, case.get("facts") or {}, case.get("context") or {}, decision_id="case", now=NOW
    )
    assert (decision.outcome, decision.row) == (expected["outcome"], expected["row"])
    assert (
        decision.citation
        == expected["citation"]
        == _row_citation(engine.tables[rule], decision.row)
    )
    assert decision.rule == rule and decision.version == engine.tables[rule].version
    assert decision.evaluated_at == NOW and decision.explanation
    assert "{" not in decision.explanation, "an explanation placeholder was left unfilled"
    for key, value in (expected.get("details") or {}).items():
        assert decision.details[key] == value, key
    for key, value in (expected.get("inputs") or {}).items():
        assert decision.inputs[key] == value, key


def test_every_row_of_every_table_has_a_case(engine: RulesEngine) -> None:
    covered = {(rule, case["expected"]["row"]) for rule, case in CASES}
    missing = [
        f"{table.rule}: {row.id}"
        for table in engine.tables.values()
        for row in (*table.rows, table.default)
        if (table.rule, row.id) not in covered
    ]
    assert not missing, f"rows without a case in {CASES_DIR}: {missing}"


def test_every_table_has_a_case_file() -> None:
    files = {p.stem for p in CASES_DIR.glob("r*.yaml")}
    tables = {f"r{int(p.name[1:3]):02d}" for p in Path(TABLES_DIR).glob("r*.yaml")}
    assert files == tables
