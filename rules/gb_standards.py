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

import math
import re
from decimal import Decimal
from typing import Any

from rules import gb_tables, item_names

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


def find_item(name: str) -> dict[str, Any] | None:
    """The GB 36600 item a lab's name stands for (CAS, Chinese or English name, brackets of
    any width, synonyms; rules/item_names.py), or None."""
    return item_names.match_item(name)


def find_farmland_item(name: str) -> str | None:
    """The GB 15618 symbol a lab's name stands for, or None."""
    return item_names.match_farmland_item(name)


construction_items = gb_tables.construction_items
farmland_items = gb_tables.farmland_items


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
        item = find_item(sample["item"])
        assert item is not None  # validated above
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


# --------------------------------------------------------------------------- GB 15618

FARMLAND_TYPES = ("paddy", "orchard", "other")
_FARMLAND_TYPE_ALIASES = {"水田": "paddy", "果园": "orchard", "其他": "other"}

#: pH bands as labelled in the CSV (GB 15618 tables 1 and 3).
PH_BANDS = ("ph<=5.5", "5.5<ph<=6.5", "6.5<ph<=7.5", "ph>7.5")


#: Farmland symbol -> GB 36600 CAS used to borrow zh/en names, or explicit (zh, en, cas).
#: Chromium in GB 15618 is total Cr, so it is NOT mapped to GB 36600 Chromium(VI).
#: DDT_total/HCH_total are sums (GB 15618 table 2 notes), not the GB 36600 DDT / HCH items.
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
    table = gb_tables.gb15618()
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

    The worst level is what the R10 table (rules/tables/r10_farmland_class.yaml) turns
    into the BJ 21 class; items without an intervention value (Cu, Ni, Zn, organics) are
    at worst above_screening. Raises ValueError for bad ph, farmland_type or samples.
    """
    band = ph_band(ph)
    land = _normalize_farmland_type(farmland_type)
    problems = farmland_sample_problems(samples)
    if problems:
        raise ValueError(f"invalid samples: {problems}")
    exceedances: list[dict[str, Any]] = []
    for i, sample in enumerate(samples):
        symbol = find_farmland_item(sample["item"])
        assert symbol is not None  # validated above
        meta = gb_tables.farmland_meta()[symbol]
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
    }


def preload() -> None:
    """Read and index both tables now (e.g. at worker start, outside the workflow sandbox)."""
    item_names.match_item("")
    item_names.match_farmland_item("")


def by_item(exceedances: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Exceedances summarised per item (count, highest value, worst level), so a decision
    records the items that matter, not a copy of every sample (ENGINE-NOTES.md)."""
    summary: dict[str, dict[str, Any]] = {}
    for entry in exceedances:
        key = entry.get("cas") or entry["item"]
        seen = summary.get(key)
        if seen is None:
            summary[key] = seen = {
                k: entry[k]
                for k in ("item", "item_zh", "cas", "screening_value", "intervention_value")
                if k in entry
            } | {"samples": 0, "max_mg_kg": entry["value_mg_kg"], "level": entry.get("level")}
        seen["samples"] += 1
        seen["max_mg_kg"] = max(seen["max_mg_kg"], entry["value_mg_kg"])
        if _LEVEL_RANK.get(entry.get("level") or NONE, 0) > _LEVEL_RANK.get(
            seen["level"] or NONE, 0
        ):
            seen["level"] = entry["level"]
    return list(summary.values())
