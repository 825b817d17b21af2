"""Benchmarks: landflow against a bare workflow of the same shape, on the same server.

`python -m bench` (or `make bench`) runs them all and writes bench/results.json;
`BENCH_QUICK=1` runs a short version in under two minutes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Row:
    """One line of bench/results.json.

    `target` bounds `ratio` = value / baseline (the bare workflow's figure) when there is
    a baseline, else `value` itself in `unit` (scale limits); `target_on` says which.
    """

    name: str
    value: float
    unit: str
    baseline: float | None
    target: float | None
    higher_is_better: bool
    note: str = ""
    target_on: str = ""  # "ratio" or "value"; empty: ratio when there is a baseline

    def __post_init__(self) -> None:
        self.target_on = self.target_on or ("ratio" if self.baseline is not None else "value")

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return round(self.value / self.baseline, 3)

    @property
    def met(self) -> bool:
        if self.target is None:
            return True
        measured = self.ratio if self.target_on == "ratio" else self.value
        if measured is None:
            return False
        return measured >= self.target if self.higher_is_better else measured <= self.target

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "met": self.met}
