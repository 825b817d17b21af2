"""The GB 36600-2018 and GB 15618-2018 tables as shipped in rules/standards/, read once.

Exact lookups only (symbol, CAS, the table's own names); the way labs write names is
rules/item_names.py, and the comparisons are rules/gb_standards.py.
"""

from __future__ import annotations

import csv
import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

_STANDARDS_DIR = Path(__file__).with_name("standards")
_GB36600_CSV = _STANDARDS_DIR / "gb36600-2018.csv"
_GB15618_CSV = _STANDARDS_DIR / "gb15618-2018.csv"


def name_key(name: str) -> str:
    """Normalise a name for matching: NFKC (full-width -> half-width), trim, casefold."""
    text = unicodedata.normalize("NFKC", name)
    return re.sub(r"\s+", " ", text).strip().casefold()


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
        keys = {name_key(item["item_zh"]), name_key(item["item_en"])}
        if item["cas"]:
            keys |= {name_key(c) for c in item["cas"].split(";")}
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
def gb15618() -> dict[tuple[str, str, str, str], float]:
    """{(item, value_type, land, ph_band): value}."""
    table: dict[tuple[str, str, str, str], float] = {}
    with _GB15618_CSV.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            key = (row["item"], row["value_type"], row["land"], row["ph_band"])
            table[key] = float(row["value_mg_per_kg"])
    return table


@cache
def farmland_meta() -> dict[str, dict[str, Any]]:
    """Symbol -> {item, item_zh, item_en, cas, keys} for every item in the GB 15618 CSV."""
    meta: dict[str, dict[str, Any]] = {}
    for symbol in dict.fromkeys(k[0] for k in gb15618()):
        spec = _FARMLAND_NAMES.get(symbol)
        if isinstance(spec, str):
            src = _gb36600_index()[name_key(spec)]
            zh, en, cas = src["item_zh"], src["item_en"], src["cas"]
        elif spec is not None:
            zh, en, cas = spec
        else:
            zh, en, cas = None, None, None
        keys = {name_key(symbol)} | {name_key(n) for n in (zh, en, cas) if n}
        meta[symbol] = {"item": symbol, "item_zh": zh, "item_en": en, "cas": cas, "keys": keys}
    return meta


@cache
def _farmland_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for symbol, meta in farmland_meta().items():
        for key in meta["keys"]:
            if index.get(key, symbol) != symbol:
                raise RuntimeError(f"ambiguous GB 15618 name {key!r}")
            index[key] = symbol
    return index


def farmland_items() -> list[str]:
    """GB 15618 item symbols in CSV order (Cd, Hg, As, Pb, Cr, Cu, Ni, Zn, HCH_total, ...)."""
    return list(farmland_meta())


def farmland_symbol(name: str) -> str | None:
    """GB 15618 symbol for a symbol, Chinese/English element name or CAS; None if unknown."""
    if not isinstance(name, str):
        return None
    return _farmland_index().get(name_key(name))
