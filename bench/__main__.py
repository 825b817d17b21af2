"""`python -m bench [NAME ...]`: run the benchmarks, write bench/results.json, print a table.

Each benchmark starts its own dev server, worker and API, runs the project and its
bare baseline, and returns rows. `BENCH_QUICK=1` shrinks every benchmark.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench import Row
from bench.stack import BIN, QUICK

RESULTS = Path(__file__).resolve().parent / "results.json"
BENCHMARKS = ["lifecycle", "latency", "replay", "scale", "rules_bench"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def server_version() -> str:
    """`temporal --version` says e.g. "temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)"."""
    out = subprocess.run([str(BIN / "temporal"), "--version"], capture_output=True, text=True)
    return out.stdout.strip().removeprefix("temporal version ")


def machine() -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": psutil.cpu_count(logical=True),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(terse=True),
        "python": platform.python_version(),
        "temporal_server": server_version(),
        "quick": QUICK,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def as_rows(result: Any) -> list[Row]:
    """Benchmarks return Row objects; a module written elsewhere may return plain dicts."""
    items = result if isinstance(result, list) else [result]
    rows = []
    for item in items:
        if isinstance(item, Row):
            rows.append(item)
        else:
            fields = {k: item.get(k) for k in ("name", "value", "unit", "baseline", "target")}
            note = item.get("note", "")
            on = item.get("target_on", "")
            higher = item.get("higher_is_better", True)
            rows.append(Row(**fields, higher_is_better=higher, note=note, target_on=on))
    return rows


def entry_point(name: str) -> Callable[[], Any]:
    module = importlib.import_module(f"bench.{name}")
    for attr in ("run", "main"):
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn
    raise RuntimeError(f"bench.{name} has neither run() nor main()")


def run_one(name: str) -> list[Row]:
    fn = entry_point(name)
    result = fn()
    if inspect.isawaitable(result):
        result = asyncio.run(result)
    return as_rows(result)


def table(rows: list[Row]) -> str:
    head = "| benchmark | landflow | bare baseline | ratio | target | met |"
    lines = [head, "|---|---:|---:|---:|---:|:-:|"]
    for row in rows:
        op = "≥" if row.higher_is_better else "≤"
        base = f"{row.baseline:g}" if row.baseline is not None else "—"
        ratio = f"{row.ratio:g}" if row.ratio is not None else "—"
        target = "—" if row.target is None else f"{op} {row.target:g}"
        if row.target_on == "value" and row.target is not None:
            target += f" {row.unit}"
        lines.append(
            f"| {row.name} | {row.value:g} {row.unit} | {base} | {ratio} | {target} | "
            f"{'yes' if row.met else 'NO'} |"
        )
    return "\n".join(lines)


def main(names: list[str]) -> int:
    started = time.perf_counter()
    info = machine()
    rows: list[Row] = []
    failures: list[str] = []
    timings: dict[str, float] = {}
    for name in names:
        if name == "rules_bench" and not Path(__file__).with_name("rules_bench.py").exists():
            print("bench.rules_bench is not there yet: skipped", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        try:
            rows += run_one(name)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"{name} failed: {exc!r}", file=sys.stderr)
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {timings[name]} s", file=sys.stderr)
    info["seconds"] = round(time.perf_counter() - started, 1)
    info["seconds_by_benchmark"] = timings
    output = {"machine": info, "rows": [r.as_dict() for r in rows], "failures": failures}
    RESULTS.write_text(json.dumps(output, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(table(rows))
    print(
        f"\n{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
        f"Python {info['python']}, Temporal {info['temporal_server']}; "
        f"{info['seconds']} s -> {RESULTS}"
    )
    missed = [r.name for r in rows if not r.met]
    if missed:
        print("missed targets: " + ", ".join(missed), file=sys.stderr)
    return 1 if missed or failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.stdout.flush()
    code = main(sys.argv[1:] or BENCHMARKS)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the Temporal core bridge can crash at interpreter exit (sdk-python#300)
