"""Soil standards lookup and comparison (GB 36600-2018, GB 15618-2018).

Pure functions over the two standards tables shipped in ``rules/standards/``:

* GB 36600-2018, construction land (DOMAIN R5): screening / intervention values for
  land class 1 and 2 (GB 36600 3.x, 4.1, 5.3), with the background-value exemption of
  the table footnote a for arsenic, cobalt and vanadium.
* GB 15618-2018, agricultural land (DOMAIN R10): screening values by land type
  (paddy / orchard / other) and pH band (GB 15618 4.1, 4.2), intervention values by
  pH band (GB 15618 5.1), and the BJ 21 classes priority protection / safe use /
  strict control.

All concentrations are mg/kg dry soil. Results are plain JSON-ready dicts. The only
I/O is reading the two CSV files once (lazily, cached). Stdlib only: safe to import
from workflow code; inside the Temporal sandbox ``open`` is restricted, so pass this
module through the sandbox (``workflow.unsafe.imports_passed_through()``) and/or call
:func:`preload` at worker start.
"""

from __future__ import annotations

import csv
import math
import re
import unicodedata
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

_STANDARDS_DIR = Path(__file__).with_name("standards")
_GB36600_CSV = _STANDARDS_DIR / "gb36600-2018.csv"
_GB15618_CSV = _STANDARDS_DIR / "gb15618-2018.csv"

NONE = "none"
ABOVE_SCREENING = "above_screening"
ABOVE_INTERVENTION = "above_intervention"
_LEVEL_RANK = {NONE: 0, ABOVE_SCREENING: 1, ABOVE_INTERVENTION: 2}

# --------------------------------------------------------------------------- planned use

#: Friendly planned-use names -> GB 50137 land-use codes (DOMAIN R5).
PLANNED_USE_ALIASES: dict[str, str] = {
    "residential": "R",
    "school": "A33",
    "medical": "A5",
    "elderly_care": "A6",
    "park": "G1",
    "playground": "G1",
    "commercial": "B",
    "industrial": "M",
    "logistics": "W",
    "green_space": "G",
}

#: GB 50137 codes understood by the service, plus "unknown" (treated as class 1).
GB50137_CODES: frozenset[str] = frozenset(
    {"R", "A33", "A5", "A6", "G1", "B", "M", "W", "S", "U", "A", "G", "unknown"}
)

#: Class 1 (第一类用地, GB 36600 3.4 / 4.1); unknown planned use is class 1 (DOMAIN R5).
_CLASS1_CODES = frozenset({"R", "A33", "A5", "A6", "G1", "unknown"})


def normalize_planned_use(value: str) -> str:
    """Return the GB 50137 code for a planned use given as code or alias (case-insensitive).

    Raises ValueError listing the accepted values if ``value`` is not recognised.
    """
    if isinstance(value, str):
        key = value.strip()
        upper = key.upper()
        if upper == "UNKNOWN":
            return "unknown"
        if upper in GB50137_CODES:
            return upper
        alias = re.sub(r"[\s\-]+", "_", key.lower())
        if alias in PLANNED_USE_ALIASES:
            return PLANNED_USE_ALIASES[alias]
    accepted = ", ".join(
        sorted(GB50137_CODES - {"unknown"}) + sorted(PLANNED_USE_ALIASES) + ["unknown"]
    )
    raise ValueError(f"unrecognised planned_use {value!r}; accepted values: {accepted}")


def land_class(planned_use: str) -> int:
    """Land class per GB 36600 3.4/3.5 and 4.1 (DOMAIN R5).

    1 for R, A33, A5, A6, G1 and unknown; 2 for M, W, B, S, U, A, G.
    """
    return 1 if normalize_planned_use(planned_use) in _CLASS1_CODES else 2


# --------------------------------------------------------------------------- helpers

#: Unit -> factor to mg/kg.
UNITS: dict[str, float] = {
    "mg/kg": 1.0,
    "mg_kg": 1.0,
    "ug/kg": 0.001,
    "μg/kg": 0.001,  # Greek mu
    "µg/kg": 0.001,  # micro sign
    "g/kg": 1000.0,
}


def _key(name: str) -> str:
    """Normalise a name for matching: NFKC (full-width -> half-width), trim, casefold."""
    text = unicodedata.normalize("NFKC", name)
    return re.sub(r"\s+", " ", text).strip().casefold()


def _unit_factor(unit: Any) -> float | None:
    if not isinstance(unit, str):
        return None
    unit = unit.strip()
    if unit in UNITS:
        return UNITS[unit]
    return UNITS.get(unit.lower())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _to_mg_kg(value: float, factor: float) -> float:
    """Convert exactly in decimal so that e.g. 20000 ug/kg is exactly 20.0 mg/kg."""
    return float(Decimal(repr(float(value))) * Decimal(repr(factor)))


def _number_problems(index: int, sample: dict[str, Any]) -> list[dict[str, Any]]:
    """Problems with unit, value_mg_kg and the optional numeric fields of one sample."""
    problems: list[dict[str, Any]] = []
    unit = sample.get("unit", "mg/kg")
    if _unit_factor(unit) is None:
        problems.append(
            {
                "index": index,
                "field": "unit",
                "value": unit,
                "reason": f"unknown unit; accepted: {', '.join(UNITS)}",
            }
        )
    if "value_mg_kg" not in sample:
        problems.append(
            {"index": index, "field": "value_mg_kg", "value": None, "reason": "missing value"}
        )
    else:
        value = sample["value_mg_kg"]
        if not _is_number(value):
            problems.append(
                {
                    "index": index,
                    "field": "value_mg_kg",
                    "value": value,
                    "reason": "value must be a finite number",
                }
            )
        elif value < 0:
            problems.append(
                {
                    "index": index,
                    "field": "value_mg_kg",
                    "value": value,
                    "reason": "value must not be negative",
                }
            )
    for field in ("background_mg_kg", "depth_m"):
        if sample.get(field) is None:
            continue
        value = sample[field]
        if not _is_number(value) or value < 0:
            problems.append(
                {
                    "index": index,
                    "field": field,
                    "value": value,
                    "reason": f"{field} must be a finite non-negative number",
                }
            )
    return problems


def _problems(samples: Any, resolve: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(samples, list):
        return [
            {"index": None, "field": "samples", "value": None, "reason": "samples must be a list"}
        ]
    problems: list[dict[str, Any]] = []
    for i, sample in enumerate(samples):
        if not isinstance(sample, dict):
            problems.append(
                {"index": i, "field": "item", "value": None, "reason": "sample must be an object"}
            )
            continue
        item = sample.get("item")
        if not isinstance(item, str) or resolve(item) is None:
            problems.append(
                {"index": i, "field": "item", "value": item, "reason": f"unknown {what} item"}
            )
        problems.extend(_number_problems(i, sample))
    return problems


def _converted(sample: dict[str, Any]) -> tuple[float, float | None]:
    """(value, background) of a validated sample, converted to mg/kg with its unit."""
    factor = _unit_factor(sample.get("unit", "mg/kg"))
    assert factor is not None  # validated beforehand
    value = _to_mg_kg(sample["value_mg_kg"], factor)
    background = sample.get("background_mg_kg")
    return value, None if background is None else _to_mg_kg(background, factor)


def _level(value: float, screening: float, intervention: float | None) -> str:
    """GB 36600 5.3 / GB 15618 5.x: <= screening none; <= intervention above_screening."""
    if value <= screening:
        return NONE
    if intervention is not None and value > intervention:
        return ABOVE_INTERVENTION
    return ABOVE_SCREENING


def _worst(levels: list[str]) -> str:
    return max(levels, key=_LEVEL_RANK.__getitem__, default=NONE)


# --------------------------------------------------------------------------- GB 36600


@cache
def _gb36600() -> tuple[dict[str, Any], ...]:
    items: list[dict[str, Any]] = []
    with _GB36600_CSV.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            items.append(
                {
                    "table": int(row["table"]),
                    "no": int(row["no"]),
                    "item_zh": row["item_zh"],
                    "item_en": row["item_en"],
                    "cas": row["cas"] or None,
                    "group": row["group"],
                    "screening1": float(row["type1_screening"]),
                    "screening2": float(row["type2_screening"]),
                    "intervention1": float(row["type1_intervention"]),
                    "intervention2": float(row["type2_intervention"]),
                    "background_exempt": "footnote a" in row["note"],
                    "note": row["note"] or None,
                }
            )
    return tuple(items)


@cache
def _gb36600_index() -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = {}
    for item in _gb36600():
        keys = {_key(item["item_zh"]), _key(item["item_en"])}
        if item["cas"]:
            keys |= {_key(c) for c in item["cas"].split(";")}
        for key in keys:
            if key in index and index[key] is not item:
                raise RuntimeError(f"ambiguous GB 36600 name {key!r}")
            index[key] = item
    return index


def construction_items() -> list[dict[str, Any]]:
    """All 85 GB 36600-2018 items (tables 1 and 2), values in mg/kg.

    Keys: table, no, item_zh, item_en, cas, group, screening1, screening2,
    intervention1, intervention2, background_exempt, note.
    """
    return [dict(item) for item in _gb36600()]


def find_item(name: str) -> dict[str, Any] | None:
    """Find a GB 36600 item by CAS number, Chinese or English name (case/width-insensitive)."""
    if not isinstance(name, str):
        return None
    item = _gb36600_index().get(_key(name))
    return None if item is None else dict(item)


def sample_problems(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every problem in a construction-land sample list (empty list: all good).

    Entries: {"index", "field", "value", "reason"}; fields item, unit, value_mg_kg,
    background_mg_kg, depth_m.
    """
    return _problems(samples, find_item, "GB 36600")


def evaluate_construction(samples: list[dict[str, Any]], planned_use: str) -> dict[str, Any]:
    """Compare samples with GB 36600 values for the planned use's land class (DOMAIN R5).

    GB 36600 5.3: value <= screening -> negligible; screening < value <= intervention ->
    above_screening (5.3.2, risk assessment); value > intervention -> above_intervention
    (5.3.3, control or remediation). Footnote a (arsenic, cobalt, vanadium): a value above
    screening but <= the sample's background_mg_kg is exempt (listed under "exempt").
    ``unit`` applies to both value_mg_kg and background_mg_kg. Each sample is judged
    separately. Raises ValueError if :func:`sample_problems` reports anything.
    """
    code = normalize_planned_use(planned_use)
    cls = land_class(code)
    problems = sample_problems(samples)
    if problems:
        raise ValueError(f"invalid samples: {problems}")
    exceedances: list[dict[str, Any]] = []
    exempt: list[dict[str, Any]] = []
    for i, sample in enumerate(samples):
        item = _gb36600_index()[_key(sample["item"])]
        value, background = _converted(sample)
        screening = item[f"screening{cls}"]
        intervention = item[f"intervention{cls}"]
        level = _level(value, screening, intervention)
        if level == NONE:
            continue
        entry = {
            "index": i,
            "item": item["item_en"],
            "item_zh": item["item_zh"],
            "cas": item["cas"],
            "value_mg_kg": value,
            "screening_value": screening,
            "intervention_value": intervention,
            "level": level,
            "depth_m": sample.get("depth_m"),
        }
        if item["background_exempt"] and background is not None and value <= background:
            entry.pop("level")
            entry["background_mg_kg"] = background
            entry["reason"] = (
                "above screening value but not above the local background value "
                "(GB 36600 table 1/2 footnote a)"
            )
            exempt.append(entry)
        else:
            exceedances.append(entry)
    return {
        "land_class": cls,
        "planned_use": code,
        "worst": _worst([e["level"] for e in exceedances]),
        "exceedances": exceedances,
        "exempt": exempt,
    }


def r5_outcome(worst: str) -> str:
    """DOMAIN R5 / GB 36600 5.3: map the worst level to the assessment outcome."""
    mapping = {
        NONE: "negligible",
        ABOVE_SCREENING: "assessment_required",
        ABOVE_INTERVENTION: "control_or_remediation",
    }
    if worst not in mapping:
        raise ValueError(f"unknown level {worst!r}; expected one of {', '.join(mapping)}")
    return mapping[worst]


# --------------------------------------------------------------------------- GB 15618

FARMLAND_TYPES = ("paddy", "orchard", "other")
_FARMLAND_TYPE_ALIASES = {"水田": "paddy", "果园": "orchard", "其他": "other"}

#: pH bands as labelled in the CSV (GB 15618 tables 1 and 3).
PH_BANDS = ("ph<=5.5", "5.5<ph<=6.5", "6.5<ph<=7.5", "ph>7.5")

#: Farmland symbol -> GB 36600 CAS used to borrow zh/en names, or explicit (zh, en, cas).
#: Chromium in GB 15618 is total Cr, so it is NOT mapped to GB 36600 Chromium(VI).
#: DDT_total/HCH_total are sums (GB 15618 table 2 notes), not the GB 36600 DDT / HCH items.
_FARMLAND_NAMES: dict[str, str | tuple[str, str, str | None]] = {
    "Cd": "7440-43-9",
    "Hg": "7439-97-6",
    "As": "7440-38-2",
    "Pb": "7439-92-1",
    "Cu": "7440-50-8",
    "Ni": "7440-02-0",
    "BaP": "50-32-8",
    "Cr": ("铬", "Chromium", "7440-47-3"),
    "Zn": ("锌", "Zinc", "7440-66-6"),
    "HCH_total": ("六六六总量", "HCH (total)", None),
    "DDT_total": ("滴滴涕总量", "DDT (total)", None),
}


@cache
def _gb15618() -> dict[tuple[str, str, str, str], float]:
    """{(item, value_type, land, ph_band): value}."""
    table: dict[tuple[str, str, str, str], float] = {}
    with _GB15618_CSV.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            key = (row["item"], row["value_type"], row["land"], row["ph_band"])
            table[key] = float(row["value_mg_per_kg"])
    return table


@cache
def _farmland_meta() -> dict[str, dict[str, Any]]:
    """Symbol -> {item, item_zh, item_en, cas, keys} for every item in the GB 15618 CSV."""
    meta: dict[str, dict[str, Any]] = {}
    for symbol in dict.fromkeys(k[0] for k in _gb15618()):
        spec = _FARMLAND_NAMES.get(symbol)
        if isinstance(spec, str):
            src = _gb36600_index()[_key(spec)]
            zh, en, cas = src["item_zh"], src["item_en"], src["cas"]
        elif spec is not None:
            zh, en, cas = spec
        else:
            zh, en, cas = None, None, None
        keys = {_key(symbol)} | {_key(n) for n in (zh, en, cas) if n}
        meta[symbol] = {"item": symbol, "item_zh": zh, "item_en": en, "cas": cas, "keys": keys}
    return meta


@cache
def _farmland_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for symbol, meta in _farmland_meta().items():
        for key in meta["keys"]:
            if index.get(key, symbol) != symbol:
                raise RuntimeError(f"ambiguous GB 15618 name {key!r}")
            index[key] = symbol
    return index


def farmland_items() -> list[str]:
    """GB 15618 item symbols in CSV order (Cd, Hg, As, Pb, Cr, Cu, Ni, Zn, HCH_total, ...)."""
    return list(_farmland_meta())


def find_farmland_item(name: str) -> str | None:
    """GB 15618 symbol for a symbol, Chinese/English element name or CAS; None if unknown."""
    if not isinstance(name, str):
        return None
    return _farmland_index().get(_key(name))


def farmland_sample_problems(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every problem in a farmland sample list (same shape as :func:`sample_problems`)."""
    return _problems(samples, find_farmland_item, "GB 15618")


def ph_band(ph: float) -> str:
    """GB 15618 pH band label; ValueError unless 0 <= ph <= 14."""
    if not _is_number(ph) or not 0 <= ph <= 14:
        raise ValueError(f"ph must be a number between 0 and 14, got {ph!r}")
    if ph <= 5.5:
        return PH_BANDS[0]
    if ph <= 6.5:
        return PH_BANDS[1]
    if ph <= 7.5:
        return PH_BANDS[2]
    return PH_BANDS[3]


def _normalize_farmland_type(farmland_type: str) -> str:
    if isinstance(farmland_type, str):
        key = farmland_type.strip()
        key = _FARMLAND_TYPE_ALIASES.get(key, key.lower())
        if key in FARMLAND_TYPES:
            return key
    raise ValueError(
        f"unrecognised farmland_type {farmland_type!r}; accepted: {', '.join(FARMLAND_TYPES)}"
    )


def _farmland_value(symbol: str, value_type: str, land: str, band: str) -> float | None:
    """Look up a GB 15618 value, falling back from the land type to "other", then "all".

    The CSV has orchard rows only for Cu (GB 15618 table 1 果园); for the other items
    orchard land uses the "other" (其他) values, and paddy uses "other" for Cu. Items
    with a single row use "all"; organics (table 2) use ph_band "all".
    """
    table = _gb15618()
    for land_key in dict.fromkeys((land, "other", "all")):
        for band_key in (band, "all"):
            found = table.get((symbol, value_type, land_key, band_key))
            if found is not None:
                return found
    return None


def evaluate_farmland(
    samples: list[dict[str, Any]], ph: float, farmland_type: str
) -> dict[str, Any]:
    """Classify farmland per GB 15618 (4.x screening, 5.x intervention) and BJ 21 (DOMAIN R10).

    Worst level none -> priority_protection (优先保护类); above screening up to and
    including intervention -> safe_use (安全利用类); above intervention -> strict_control
    (严格管控类). Items without an intervention value (Cu, Ni, Zn, organics) are at worst
    safe_use. Raises ValueError for bad ph, farmland_type or samples.
    """
    band = ph_band(ph)
    land = _normalize_farmland_type(farmland_type)
    problems = farmland_sample_problems(samples)
    if problems:
        raise ValueError(f"invalid samples: {problems}")
    exceedances: list[dict[str, Any]] = []
    for i, sample in enumerate(samples):
        symbol = _farmland_index()[_key(sample["item"])]
        meta = _farmland_meta()[symbol]
        screening = _farmland_value(symbol, "screening", land, band)
        intervention = _farmland_value(symbol, "intervention", land, band)
        if screening is None:  # pragma: no cover - every CSV item has a screening value
            raise RuntimeError(f"no GB 15618 screening value for {symbol}")
        value, _ = _converted(sample)
        level = _level(value, screening, intervention)
        if level == NONE:
            continue
        exceedances.append(
            {
                "index": i,
                "item": symbol,
                "item_zh": meta["item_zh"],
                "item_en": meta["item_en"],
                "cas": meta["cas"],
                "value_mg_kg": value,
                "screening_value": screening,
                "intervention_value": intervention,
                "level": level,
                "depth_m": sample.get("depth_m"),
            }
        )
    worst = _worst([e["level"] for e in exceedances])
    return {
        "ph": ph,
        "ph_band": band,
        "farmland_type": land,
        "worst": worst,
        "exceedances": exceedances,
        "outcome": r10_outcome(worst),
    }


def r10_outcome(worst: str) -> str:
    """DOMAIN R10 / BJ 21: map the worst GB 15618 level to the farmland class."""
    mapping = {
        NONE: "priority_protection",
        ABOVE_SCREENING: "safe_use",
        ABOVE_INTERVENTION: "strict_control",
    }
    if worst not in mapping:
        raise ValueError(f"unknown level {worst!r}; expected one of {', '.join(mapping)}")
    return mapping[worst]


def preload() -> None:
    """Read and index both tables now (e.g. at worker start, outside the workflow sandbox)."""
    _gb36600_index()
    _farmland_index()
