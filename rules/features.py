"""Rule inputs: the few plain values each decision table reads, derived from parcel facts.

A decision records exactly these inputs, so an auditor sees what the rule saw. Each
function takes the submitted facts (DOMAIN.md vocabulary) and the workflow's context
for that decision (screening result, samples, transport report, evaluation) and
returns JSON-ready values. No I/O, no engine: the tables in rules/*.yaml decide.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from rules import gb_standards

Facts = dict[str, Any]
Context = dict[str, Any]

INDUSTRIAL_OR_SERVICE = {"industrial", "gas_station", "auto_repair", "other_service"}
# R1: uses that trigger an investigation when the planned use changes to them (BJ 17;
# Law 59). An unknown planned use counts, as it does for GB 36600 class 1.
SENSITIVE_USES = {"R", "B", "A33", "A5", "A6", "G1", "G", "unknown"}
# R6: industries whose demolition needs a residual-chemicals plan first (BJ 9).
DEMOLITION_FILING_INDUSTRIES = {
    "nonferrous_smelting",
    "petroleum_processing",
    "chemical",
    "coking",
    "electroplating",
    "pharmaceutical",
    "auto_manufacturing",
    "transport_equipment",
}
# R9: focus indicators (BJ 5, 33), matched on GB 36600 English names or simple keys.
KEY_POLLUTANT_GROUPS = {
    "cadmium": "Cd",
    "mercury": "Hg",
    "arsenic": "As",
    "lead": "Pb",
    "chromium(vi)": "Cr",
    "chromium": "Cr",
    "petroleum hydrocarbons c10-c40": "petroleum hydrocarbons",
}
PAH_NAMES = {
    "benz[a]anthracene",
    "benzo[a]pyrene",
    "benzo[b]fluoranthene",
    "benzo[k]fluoranthene",
    "chrysene",
    "dibenz[a,h]anthracene",
    "indeno[1,2,3-cd]pyrene",
    "naphthalene",
}


@lru_cache(maxsize=1024)
def _code_of(planned_use: str) -> str:
    # the same few planned uses recur in every decision; normalising them is regex work
    return gb_standards.normalize_planned_use(planned_use)


def _planned_code(facts: Facts) -> str:
    planned = facts.get("planned_use") or "unknown"
    return (
        _code_of(planned)
        if isinstance(planned, str)
        else gb_standards.normalize_planned_use(planned)
    )


def _site_kind(facts: Facts) -> str:
    use = facts.get("current_use")
    if use in INDUSTRIAL_OR_SERVICE:
        return "industrial_or_service"
    return "farmland" if use == "farmland" else "other"


def _farmland_to_construction(facts: Facts) -> bool:
    return facts.get("current_use") == "farmland" and _planned_code(facts) != "unknown"


def r1_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    planned = _planned_code(facts)
    return {
        "site_kind": _site_kind(facts),
        "right_status": facts.get("right_status"),
        "planned_use": planned,
        "sensitive_planned_use": planned in SENSITIVE_USES,
        "suspected_file": bool(context.get("suspected_file", False)),
        "farmland_class": facts.get("farmland_class") or "none",
        "farmland_to_construction": _farmland_to_construction(facts),
    }


def r2_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    return {
        "right_status": facts.get("right_status"),
        "farmland_class": facts.get("farmland_class") or "none",
        "farmland_to_construction": _farmland_to_construction(facts),
    }


def r3_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    return {"enterprise_closed": bool(facts.get("enterprise_closed", False))}


def r4_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    polluter = facts.get("polluter") or {}
    transferee = facts.get("transferee") or {}
    return {
        "right_status": facts.get("right_status"),
        "polluter_status": polluter.get("status", "unknown"),
        "polluter_is_former_right_holder": bool(polluter.get("is_former_right_holder", False)),
        "has_transferee": bool(transferee),
        "has_agreed_party": bool(transferee.get("agreed_responsible")),
        "polluter_name": polluter.get("name"),
        "successor_name": polluter.get("successor"),
        "transferee_name": transferee.get("name"),
        "agreed_party_name": transferee.get("agreed_responsible"),
        "district": facts.get("district"),
    }


def r5_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    samples = context.get("samples", facts.get("samples") or [])
    planned = facts.get("planned_use") or "unknown"
    evaluation = gb_standards.evaluate_construction(samples, planned)
    return {
        "planned_use": evaluation["planned_use"],
        "land_class": evaluation["land_class"],
        "samples": samples,
        "worst": evaluation["worst"],
        "exceedances": evaluation["exceedances"],
        "exempt": evaluation["exempt"],
    }


def r6_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    return {
        "enterprise_closed": bool(facts.get("enterprise_closed", False)),
        "listed_industry": facts.get("industry") in DEMOLITION_FILING_INDUSTRIES,
        "industry": facts.get("industry") or "none",
        "district": facts.get("district"),
    }


def r7_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    transport = context.get("transport") or {}
    origin = transport.get("origin_district") or facts.get("district")
    destination = transport.get("destination_district")
    report_to = [f"district_epb:{d}" for d in dict.fromkeys([origin, destination]) if d]
    return {
        "off_site": bool(transport),
        "origin_district": origin,
        "destination_district": destination,
        "report_to": report_to,
    }


def r8_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    evaluation = context.get("evaluation") or {}
    evaluator = (evaluation.get("evaluator") or "").strip()
    contractor = (context.get("contractor") or "").strip()
    return {
        "met": bool(evaluation.get("met", False)),
        "evaluator": evaluator,
        "contractor": contractor,
        "independent": bool(evaluator) and evaluator.casefold() != contractor.casefold(),
    }


def _key_pollutant(name: str) -> str | None:
    item = gb_standards.find_item(name)
    english = (item["item_en"] if item else name).strip().casefold()
    if english in PAH_NAMES:
        return "PAHs"
    return KEY_POLLUTANT_GROUPS.get(english)


def r9_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    samples = context.get("samples", facts.get("samples") or [])
    found = sorted({k for s in samples if (k := _key_pollutant(str(s.get("item", ""))))})
    return {"key_pollutants": found, "has_key_pollutant": bool(found)}


def r10_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    samples = context.get("samples", facts.get("samples") or [])
    ph = context.get("ph", facts.get("ph"))
    farmland_type = context.get("farmland_type", facts.get("farmland_type")) or "other"
    if ph is None:
        raise ValueError("ph is required to classify farmland (GB 15618)")
    evaluation = gb_standards.evaluate_farmland(samples, ph, farmland_type)
    return {
        "ph": ph,
        "ph_band": evaluation["ph_band"],
        "farmland_type": farmland_type,
        "samples": samples,
        "worst": evaluation["worst"],
        "exceedances": evaluation["exceedances"],
    }


RULE_INPUTS: dict[str, Callable[[Facts, Context], dict[str, Any]]] = {
    "R1": r1_inputs,
    "R2": r2_inputs,
    "R3": r3_inputs,
    "R4": r4_inputs,
    "R5": r5_inputs,
    "R6": r6_inputs,
    "R7": r7_inputs,
    "R8": r8_inputs,
    "R9": r9_inputs,
    "R10": r10_inputs,
}
