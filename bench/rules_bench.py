"""Decisions per second through the rules layer, against plain Python over the same tables.

Both sides run the same pipeline on the same inputs (the cases of rules/cases/ for the
simple rules R1, R2, R3, R6): feature extraction, input checks, matching, the Decision
record. Only the matching differs: durable-rules (`RulesEngine.evaluate`) against a tiny
interpreter taking the first row whose `when` holds. Rounds alternate between the two so
that load from other processes hits both alike; the best round of each counts.

`python -m bench.rules_bench` prints the rows (`... profile`: cProfile of both sides);
`BENCH_QUICK=1` runs shorter rounds. The target: 20,000 decisions/s through
`RulesEngine.evaluate` in one thread.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import sys
import time
from typing import Any

import yaml

from bench import Row
from bench.stack import QUICK
from rules.engine import TABLES_DIR, RulesEngine, Table
from rules.engine import Row as TableRow
from rules.features import RULE_INPUTS

SIMPLE_RULES = ("R1", "R2", "R3", "R6")
ALL_RULES = tuple(sorted(RULE_INPUTS, key=lambda r: int(r[1:])))
TARGET = 20_000
Inputs = list[tuple[str, dict[str, Any], dict[str, Any]]]


def holds(expected: Any, value: Any) -> bool:
    return value in expected if isinstance(expected, list) else value == expected


def first_row(table: Table, inputs: dict[str, Any]) -> TableRow:
    """FIRST hit policy in plain Python: the first row whose every condition holds."""
    for row in table.rows:
        if all(holds(expected, inputs.get(name)) for name, expected in row.when.items()):
            return row
    return table.default


class PlainEngine(RulesEngine):
    """RulesEngine with durable-rules swapped for `first_row`; everything else the same."""

    def _match(self, table: Table, inputs: dict[str, Any]) -> TableRow:
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


def run() -> list[Row]:
    rounds, seconds = (3, 0.5) if QUICK else (5, 2.0)
    simple = compare(case_inputs(SIMPLE_RULES), rounds, seconds)
    every = compare(case_inputs(ALL_RULES), 1 if QUICK else 3, seconds)
    (durable, durable_cpu), (plain, plain_cpu) = simple["durable"], simple["plain"]
    note = (
        f"simple rules {'/'.join(SIMPLE_RULES)} (the cases of rules/cases/), one thread, per "
        f"second of the thread's CPU (the machine is shared), best of {rounds} x {seconds:g} s; "
        f"per wall second {durable:,.0f} vs {plain:,.0f}; baseline: plain Python first-hit over "
        f"the same tables, same features and Decision records"
    )
    every_note = (
        f"every rule {ALL_RULES[0]}-{ALL_RULES[-1]} over its cases, per CPU second (per wall "
        f"second {every['durable'][0]:,.0f} vs {every['plain'][0]:,.0f}); R5, R8 and R10 "
        f"evaluate samples against the GB tables in their features"
    )
    return [
        Row(
            "rules decisions",
            round(durable_cpu),
            "decisions/s",
            round(plain_cpu),
            TARGET,
            True,
            note,
            "value",
        ),
        Row(
            "rules decisions, all rules",
            round(every["durable"][1]),
            "decisions/s",
            round(every["plain"][1]),
            None,
            True,
            every_note,
            "value",
        ),
    ]


def profile(count: int = 20_000) -> str:
    """cProfile of `count` decisions of the simple rules through each engine: where the
    durable-rules side spends its time against plain Python (bench/PROFILE.md)."""
    inputs = case_inputs(SIMPLE_RULES)
    out = io.StringIO()
    for name, engine in (("durable", RulesEngine()), ("plain", PlainEngine())):
        profiler = cProfile.Profile()
        profiler.enable()
        done = 0
        while done < count:
            for rule, facts, context in inputs:
                engine.evaluate(rule, facts, context, decision_id="bench")
            done += len(inputs)
        profiler.disable()
        out.write(f"=== {name}: {done} decisions ===\n")
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(14)
    return out.getvalue()


if __name__ == "__main__":
    if sys.argv[1:2] == ["profile"]:
        print(profile())
    else:
        for row in run():
            print(row.as_dict())
