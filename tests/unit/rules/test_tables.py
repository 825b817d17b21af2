"""Every decision table against its cases in rules/cases/*.yaml, through durable-rules.

One generic test: a new row needs a new case (data), not new test code. Each case says
the outcome, the row that must fire and its citation; the citation (and the row's
law-over-plan note) is also checked against the table, so a case cannot drift from the
declaration it tests. The tables' FIRST hit policy is checked over every combination of
their declared inputs, which also finds rows that can never fire.
"""

from __future__ import annotations

import itertools
import json
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from rules.engine import TABLES_DIR, Row, RulesEngine, Table
from rules.features import RULE_INPUTS

CASES_DIR = TABLES_DIR.parent / "cases"
NOW = datetime(2027, 1, 15, 9, 30, tzinfo=UTC)
CASE_KEYS = {"name", "facts", "context", "expected"}
EXPECTED_KEYS = {"outcome", "row", "citation", "details", "inputs", "law_over_plan"}


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


def evaluate(engine: RulesEngine, rule: str, case: dict[str, Any], **kw: Any) -> Any:
    """A case's decision, as the `decide` activity would make it."""
    return engine.evaluate(rule, case.get("facts") or {}, case.get("context") or {}, **kw)


def _first_match(table: Table, inputs: dict[str, Any]) -> Row:
    """The FIRST hit policy, by definition: the first row all of whose conditions hold."""
    for row in table.rows:
        if all(
            inputs[name] in (want if isinstance(want, list) else [want])
            for name, want in row.when.items()
        ):
            return row
    return table.default


def _input_space(table: Table) -> list[dict[str, Any]]:
    names = list(table.inputs)
    return [dict(zip(names, v, strict=True)) for v in itertools.product(*table.inputs.values())]


def _reachable(engine: RulesEngine) -> dict[str, set[str]]:
    """The rows each table can fire, over every combination of its declared inputs."""
    return {
        rule: {engine._match(table, inputs).id for inputs in _input_space(table)}
        for rule, table in engine.tables.items()
    }


@pytest.mark.parametrize(
    ("rule", "case"), CASES, ids=[f"{rule}: {case['name']}" for rule, case in CASES]
)
def test_case(engine: RulesEngine, rule: str, case: dict[str, Any]) -> None:
    expected = case["expected"]
    table = engine.tables[rule]
    decision = evaluate(engine, rule, case, decision_id="case", now=NOW)
    assert (decision.outcome, decision.row) == (expected["outcome"], expected["row"]), (
        decision.explanation
    )
    row = table.row_by_id[decision.row]
    assert decision.citation == expected["citation"] == row.citation
    assert decision.law_over_plan == row.law_over_plan
    if "law_over_plan" in expected:
        assert decision.law_over_plan == expected["law_over_plan"]
    assert (decision.id, decision.rule, decision.version) == ("case", rule, table.version)
    assert decision.evaluated_at == NOW
    # every placeholder of the row's sentence was filled with a value the rule saw
    seen = RULE_INPUTS[rule](case.get("facts") or {}, case.get("context") or {})
    fields = [f for _, f, _, _ in string.Formatter().parse(row.because) if f]
    assert all(seen.get(f) is not None for f in fields), (row.because, seen)
    assert decision.explanation == row.because.format(**seen)
    for key, value in (expected.get("details") or {}).items():
        assert decision.details.get(key) == value, key
    for key, value in (expected.get("inputs") or {}).items():
        assert decision.inputs.get(key) == value, key
    assert json.loads(decision.model_dump_json()) == decision.model_dump(mode="json")


def test_case_files_are_well_formed(engine: RulesEngine) -> None:
    """A misspelt key (`detail:`) would silently assert nothing."""
    problems = []
    names = [(rule, case.get("name")) for rule, case in CASES]
    problems += [
        f"{r}: duplicate case name {n!r}" for r, n in set(names) if names.count((r, n)) > 1
    ]
    for rule, case in CASES:
        where = f"{rule}: {case.get('name')!r}"
        problems += [f"{where}: unknown key {k!r}" for k in set(case) - CASE_KEYS]
        expected = case.get("expected") or {}
        problems += [f"{where}: unknown expected key {k!r}" for k in set(expected) - EXPECTED_KEYS]
        problems += [
            f"{where}: expected.{k} is missing"
            for k in ("outcome", "row", "citation")
            if k not in expected
        ]
        if expected.get("row") not in engine.tables[rule].row_by_id:
            problems.append(f"{where}: {rule} has no row {expected.get('row')!r}")
    assert not problems, "\n".join(problems)


def test_every_row_that_can_fire_has_a_case(engine: RulesEngine) -> None:
    """A default row that no combination of inputs reaches is the engine's catch-all
    (see rules/engine.py DEFAULT_MARK) and needs no case."""
    covered = {(rule, case["expected"]["row"]) for rule, case in CASES}
    reachable = _reachable(engine)
    missing = [
        f"{rule}: {row_id}"
        for rule, rows in reachable.items()
        for row_id in sorted(rows)
        if (rule, row_id) not in covered
    ]
    assert not missing, f"rows without a case in {CASES_DIR}: {missing}"


def test_no_row_is_shadowed_by_the_rows_above_it(engine: RulesEngine) -> None:
    reachable = _reachable(engine)
    dead = [
        f"{table.rule}: {row.id}"
        for table in engine.tables.values()
        for row in table.rows
        if row.id not in reachable[table.rule]
    ]
    assert not dead, f"rows that no input can reach: {dead}"


@pytest.mark.parametrize("rule", sorted(RULE_INPUTS, key=lambda r: int(r[1:])))
def test_the_engine_fires_the_first_matching_row_for_every_input(
    engine: RulesEngine, rule: str
) -> None:
    table = engine.tables[rule]
    wrong = [
        (inputs, fired.id, first.id)
        for inputs in _input_space(table)
        if (fired := engine._match(table, inputs)).id != (first := _first_match(table, inputs)).id
    ]
    assert not wrong, f"{rule}: durable-rules fired another row than FIRST: {wrong[:5]}"


def test_every_table_declares_hit_policy_first() -> None:
    """The loader assumes FIRST when the key is missing; the tables must say so."""
    for path in sorted(TABLES_DIR.glob("r*.yaml")):
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert raw.get("hit_policy") == "first", path.name


def test_every_table_has_a_case_file() -> None:
    files = {p.stem for p in CASES_DIR.glob("r*.yaml")}
    tables = {f"r{int(p.name[1:3]):02d}" for p in Path(TABLES_DIR).glob("r*.yaml")}
    assert files == tables


def _placeholders(text: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(text) if f}


def test_every_row_explains_itself_in_chinese_with_the_same_placeholders(
    engine: RulesEngine,
) -> None:
    """The workbench shows a decision's explanation in Chinese from its row's `because_zh`,
    filled from the decision's record; the history keeps the English `because`."""
    problems = []
    for table in engine.tables.values():
        for row in (*table.rows, table.default):
            if not row.because_zh:
                problems.append(f"{row.id}: no because_zh")
            elif _placeholders(row.because_zh) != _placeholders(row.because):
                problems.append(
                    f"{row.id}: because_zh fills {sorted(_placeholders(row.because_zh))}, "
                    f"because fills {sorted(_placeholders(row.because))}"
                )
            elif not any("\u4e00" <= ch <= "\u9fff" for ch in row.because_zh):
                problems.append(f"{row.id}: because_zh is not Chinese")
    assert not problems, "\n".join(problems)
