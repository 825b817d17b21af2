"""`python -m bench [NAME ...]`: run benchmarks, write bench/results.json, print a table.

Without names: every benchmark of BENCHMARKS, the scale benchmark with a few hundred
parcels (`make bench`; `BENCH_QUICK=1` shrinks each). `python -m bench scale` is the
100,000-parcel run (`make bench-scale`; BENCH_SCALE_PARCELS sets the count). Each
benchmark starts its own dev server, workers and APIs under `service.processes`.

bench/results.json keeps the newest row of each name: a run replaces the rows it
produced and keeps the others (each row says when and how it was measured). Exit 1
when a row of this run misses its target or a benchmark failed.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
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
BENCHMARKS = [
    "lifecycle",
    "latency",
    "replay",
    "history_size",
    "rules_bench",
    "lab_results_bench",
    "pages_bench",  # written by another engineer; skipped (with a note) until it exists
    "scale",
    "scale_out",
]
QUICK_SKIPS = {"scale_out"}  # BENCH_QUICK: the scale-out test covers it (tests/e2e/scale)
OPTIONAL = {"pages_bench"}
DEFAULT_RUN_SCALE_PARCELS = "100" if QUICK else "300"


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
        "server_store": os.environ.get("BENCH_SERVER", "file"),
        "registry": os.environ.get("BENCH_REGISTRY", "sqlite"),
        "quick": QUICK,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def as_rows(result: Any) -> list[Row]:
    """Benchmarks return Row objects; a module written elsewhere may return plain dicts."""
    items = result if isinstance(result, list) else [result]
    rows = []
    for item in items:
        if isinstance(item, Row):
            rows.append(item)
            continue
        fields = {k: item.get(k) for k in ("name", "value", "unit", "baseline", "target")}
        rows.append(
            Row(
                **fields,
                higher_is_better=item.get("higher_is_better", True),
                note=item.get("note", ""),
                target_on=item.get("target_on", ""),
            )
        )
    return rows


def available(name: str) -> bool:
    return importlib.util.find_spec(f"bench.{name}") is not None


def entry_point(name: str) -> Callable[[], Any]:
    module = importlib.import_module(f"bench.{name}")
    for attr in ("run", "main"):
        fn = getattr(module, attr, None)
        if callable(fn):
            return fn
    raise RuntimeError(f"bench.{name} has neither run() nor main()")


def run_one(name: str) -> list[Row]:
    result = entry_point(name)()
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return as_rows(result)


def table(rows: list[Row]) -> str:
    head = "| benchmark | landflow | baseline | ratio | target | met |"
    lines = [head, "|---|---:|---:|---:|---:|:-:|"]
    for row in rows:
        op = "≥" if row.higher_is_better else "≤"
        base = f"{row.baseline:g}" if row.baseline is not None else "—"
        ratio = f"{row.ratio:g}" if row.ratio is not None else "—"
        target = "—" if row.target is None else f"{op} {row.target:g}"
        if row.target_on == "value" and row.target is not None:
            target += f" {row.unit}"
        else:
            target += "×" if row.target is not None else ""
        met = "yes" if row.met else "**NO**"
        lines.append(
            f"| {row.name} | {row.value:g} {row.unit} | {base} | {ratio} | {target} | {met} |"
        )
    return "\n".join(lines)


def write(info: dict[str, Any], rows: list[dict[str, Any]], failures: list[str]) -> None:
    """Replace the rows of this run's names, keep the others."""
    kept: list[dict[str, Any]] = []
    if RESULTS.exists():
        try:
            kept = json.loads(RESULTS.read_text(encoding="utf-8")).get("rows", [])
        except (OSError, ValueError):
            kept = []
    names = {row["name"] for row in rows}
    merged = [row for row in kept if row.get("name") not in names and "at" in row] + rows
    output = {"machine": info, "rows": merged, "failures": failures}
    RESULTS.write_text(json.dumps(output, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main(names: list[str], default_run: bool) -> int:
    if default_run:
        os.environ.setdefault("BENCH_SCALE_PARCELS", DEFAULT_RUN_SCALE_PARCELS)
    started = time.perf_counter()
    info = machine()
    rows: list[Row] = []
    produced: list[dict[str, Any]] = []
    failures: list[str] = []
    timings: dict[str, float] = {}
    for name in names:
        if name in OPTIONAL and not available(name):
            print(f"bench/{name}.py is not there yet: skipped (no rows)", file=sys.stderr)
            continue
        t0 = time.perf_counter()
        try:
            got = run_one(name)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
            print(f"{name} failed: {exc!r}", file=sys.stderr)
            got = []
        timings[name] = round(time.perf_counter() - t0, 1)
        at = datetime.now(UTC).isoformat(timespec="seconds")
        rows += got
        produced += [{**r.as_dict(), "benchmark": name, "at": at, "quick": QUICK} for r in got]
        print(f"{name}: {timings[name]} s", file=sys.stderr)
        print(table(got), file=sys.stderr, flush=True)
    info["seconds"] = round(time.perf_counter() - started, 1)
    info["seconds_by_benchmark"] = timings
    write(info, produced, failures)
    print(table(rows))
    print(
        f"\n{info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
        f"Python {info['python']}, Temporal {info['temporal_server']}, "
        f"load {info['load_average_at_start']}; {info['seconds']} s -> {RESULTS}"
    )
    missed = [
        f"{r.name} ({r.ratio if r.target_on == 'ratio' else r.value})" for r in rows if not r.met
    ]
    if missed:
        print("missed targets: " + "; ".join(missed), file=sys.stderr)
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if missed or failures else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asked = sys.argv[1:]
    chosen = asked or [n for n in BENCHMARKS if not (QUICK and n in QUICK_SKIPS)]
    code = main(chosen, default_run=not asked)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the Temporal core bridge can crash at interpreter exit (sdk-python#300)
