"""Lab-result files parsed, matched and judged (rules.lab_results, R5; no servers).

A generated 5,000-row file, once as XLSX and once as CSV, with item names in the mixed
forms labs use (CAS, Chinese, English, brackets, synonyms) and all four units. Each
format is parsed several times and its best round counts; `seconds` is the slower
format's, so `rows_per_second` holds for either. The parsed samples are then judged by
R5 (GB 36600 screening and intervention values for the planned use) through
`RulesEngine.evaluate`, as the `decide` activity does after an investigation report.
Target: 5,000 samples parsed and evaluated in under 1 s.

`python -m bench.lab_results_bench` prints the figures.
"""

from __future__ import annotations

import csv
import io
import os
import time
from typing import Any

from openpyxl import Workbook

from bench import Row
from bench.fixtures import facts
from rules.engine import RulesEngine
from rules.lab_results import parse_lab_results

ROWS = 5_000
ROUNDS = 2 if os.environ.get("BENCH_QUICK") == "1" else 5
TARGET_S = 1.0
NAMES = ("苯并(a)芘", "50-32-8", "Lead", "六价铬", "Cr(VI)", "总石油烃", "三氯甲烷", "As", "镉")
UNITS = ("mg/kg", "μg/kg", "ug/kg", "g/kg")
HEADER = ["sample_id", "depth_m", "item", "value", "unit", "background"]


def rows() -> list[list[Any]]:
    return [
        [f"S{i}", (i % 20) / 4, NAMES[i % len(NAMES)], i * 0.137 % 50, UNITS[i % len(UNITS)], ""]
        for i in range(ROWS)
    ]


def xlsx(data: list[list[Any]]) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(HEADER)
    for row in data:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(data: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER)
    writer.writerows(data)
    return out.getvalue().encode("utf-8")


def best_seconds(data: bytes, engine: RulesEngine) -> tuple[float, float, str]:
    """Best (parse, parse + R5) seconds over the rounds, and R5's outcome."""
    best_parse = best_total = float("inf")
    outcome = ""
    residential = facts("LAB0001")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        samples = parse_lab_results(data)
        parsed = time.perf_counter()
        inputs = [{k: v for k, v in s.items() if v is not None} for s in samples]
        outcome = engine.evaluate("R5", residential, {"samples": inputs}).outcome
        done = time.perf_counter()
        assert len(samples) == ROWS
        best_parse, best_total = min(best_parse, parsed - start), min(best_total, done - start)
    return best_parse, best_total, outcome


def measure() -> dict[str, Any]:
    data = rows()
    engine = RulesEngine()
    xlsx_parse, xlsx_total, outcome = best_seconds(xlsx(data), engine)
    csv_parse, csv_total, _ = best_seconds(csv_bytes(data), engine)
    seconds = max(xlsx_parse, csv_parse)
    return {
        "rows": ROWS,
        "seconds": seconds,
        "rows_per_second": ROWS / seconds,
        "xlsx_seconds": xlsx_parse,
        "csv_seconds": csv_parse,
        "xlsx_with_r5": xlsx_total,
        "csv_with_r5": csv_total,
        "r5_outcome": outcome,
    }


def run() -> list[Row]:
    got = measure()
    total = max(got["xlsx_with_r5"], got["csv_with_r5"])
    note = (
        f"{ROWS:,} rows, best of {ROUNDS}; XLSX parse {got['xlsx_seconds']:.3f} s "
        f"(+R5 {got['xlsx_with_r5']:.3f} s), CSV parse {got['csv_seconds']:.3f} s "
        f"(+R5 {got['csv_with_r5']:.3f} s); R5 says {got['r5_outcome']}; the slower format counts"
    )
    return [
        Row(
            "lab results: 5,000 samples parsed + R5",
            round(total, 3),
            "s",
            None,
            TARGET_S,
            False,
            note,
        )
    ]


if __name__ == "__main__":
    result = measure()
    print(
        f"{result['rows']} rows: xlsx {result['xlsx_seconds']:.3f} s "
        f"(+R5 {result['xlsx_with_r5']:.3f} s), csv {result['csv_seconds']:.3f} s "
        f"(+R5 {result['csv_with_r5']:.3f} s) -> {result['rows_per_second']:,.0f} rows/s, "
        f"R5 {result['r5_outcome']}"
    )
