"""Decisions per second through the rules layer, against plain Python over the same tables.

Both sides run the same pipeline on the same inputs (the cases of rules/cases/ for the
simple rules R1, R2, R3, R6): feature extraction, input checks, matching, the Decision
record. Only the matching differs: durable-rules (`RulesEngine.evaluate`) against a tiny
interpreter taking the first row whose `when` holds. Rounds alternate between the two so
that load from other processes hits both alike; the best round of each counts.

`python -m bench.rules_bench` prints both figures and the ratio; `BENCH_QUICK=1` runs
shorter rounds. The target (issue 3) is 20,000 decisions/s through RulesEngine.evaluate.
"""

from __future__ import annotations

import os
import time
from typing import Any

import yaml

from rules.engine import TABLES_DIR, Row, RulesEngine, Table

QUICK = os.environ.get("BENCH_QUICK") == "1"
SIMPLE_RULES = ("R1", "R2", "R3", "R6")
TARGET = 20_000
Inputs = list[tuple[str, dict[str, Any], dict[str, Any]]]


def holds(expected: Any, value: Any) -> bool:
    return value in expected if isinstance(expected, list) else value == expected


def first_row(table: Table, inputs: dict[str, Any]) -> Row:
    """FIRST hit policy in plain Python: the first row whose every condition holds."""
    for row in table.rows:
        if all(holds(expected, inputs.get(name)) for name, expected in row.when.items()):
            return row
    return table.default


class PlainEngine(RulesEngine):
    """RulesEngine with durable-rules swapped for `first_row`; everything else the same."""

    def _match(self, table: Table, inputs: dict[str, Any]) -> Row:
        for name, allowed in table.inputs.items():
            if inputs.get(name) not in allowed:
                raise ValueError(f"{table.rule}: input {name}={inputs.get(name)!r} not allowed")
        return first_row(table, inputs)


def case_inputs(rules: tuple[str, ...]) -> Inputs:
    inputs = []
    for path in sorted((TABLES_DIR.parent / "cases").glob("r*.yaml")):
        rule = f"R{int(path.stem[1:])}"
        if rule in rules:
            for case in yaml.safe_load(path.read_text(encoding="utf-8")):
                inputs.append((rule, case.get("facts") or {}, case.get("context") or {}))
    return inputs


def rate(engine: RulesEngine, inputs: Inputs, seconds: float) -> tuple[float, float]:
    """Decisions per second of wall time and of this process's CPU time, over whole
    passes through `inputs` for about `seconds` (CPU time shows what other load hides)."""
    done, started, cpu = 0, time.perf_counter(), time.process_time()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        for rule, facts, context in inputs:
            engine.evaluate(rule, facts, context, decision_id="bench")
        done += len(inputs)
    return done / (time.perf_counter() - started), done / (time.process_time() - cpu)


def compare(inputs: Inputs, rounds: int, seconds: float) -> dict[str, tuple[float, float]]:
    """Best (wall, cpu) rates of each side, rounds alternating between the two."""
    engines = {"durable": RulesEngine(), "plain": PlainEngine()}
    for rule, facts, context in inputs:  # same answers, or the comparison means nothing
        rows = {name: e.evaluate(rule, facts, context).row for name, e in engines.items()}
        assert rows["durable"] == rows["plain"], f"{rule} {facts}: {rows}"
    best = {name: (0.0, 0.0) for name in engines}
    for _ in range(rounds):
        for name, engine in engines.items():
            wall, cpu = rate(engine, inputs, seconds)
            best[name] = (max(best[name][0], wall), max(best[name][1], cpu))
    return best


def run() -> dict[str, Any]:
    rounds, seconds = (3, 0.5) if QUICK else (5, 2.0)
    simple = compare(case_inputs(SIMPLE_RULES), rounds, seconds)
    every = compare(case_inputs(tuple(f"R{n}" for n in range(1, 11))), 1, seconds)
    (durable, durable_cpu), (plain, plain_cpu) = simple["durable"], simple["plain"]
    ratio = round(durable / plain, 3)
    print(f"simple rules {', '.join(SIMPLE_RULES)}, best of {rounds} x {seconds:g} s, one thread")
    print("                                        per wall s     per CPU s")
    print(f"  durable-rules (RulesEngine.evaluate): {durable:10,.0f}  {durable_cpu:12,.0f}")
    print(f"  plain Python, same tables:            {plain:10,.0f}  {plain_cpu:12,.0f}")
    print(f"  ratio durable/plain:                  {ratio:10.3f}   target >= {TARGET:,}/s")
    every_durable, every_plain = every["durable"][0], every["plain"][0]
    print(f"all rules R1-R10 (GB tables included): {every_durable:,.0f} vs {every_plain:,.0f}/s")
    return {
        "name": "rules_decisions_per_s",
        "value": round(durable),
        "unit": "decisions/s",
        "baseline": round(plain),
        "ratio": ratio,
        "target": TARGET,
        "higher_is_better": True,
        "target_on": "value",  # 20,000 decisions/s is an absolute target, not a ratio
        "note": f"simple rules {'/'.join(SIMPLE_RULES)}, one thread, "
        f"{durable_cpu:,.0f} per CPU s; all rules R1-R10: {every_durable:,.0f}/s "
        f"(plain {every_plain:,.0f})",
    }


if __name__ == "__main__":
    print(run())
