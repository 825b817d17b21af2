"""Rule inputs: the few plain values each decision table reads, derived from parcel facts.

A decision records exactly these inputs, so an auditor sees what the rule saw. Each
function takes the submitted facts (DOMAIN.md vocabulary) and the workflow's context
for that decision (screening result, samples, transport report, evaluation) and
returns JSON-ready values. Samples are recorded as their digest and count, never
copied (the exceedances per item go to the decision's details). No I/O, no engine:
the tables in rules/tables/*.yaml decide.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from landflow.messages import sha256_json
from rules import gb_standards

Facts = dict[str, Any]
Context = dict[str, Any]

INDUSTRIAL_OR_SERVICE = {"industrial", "gas_station", "auto_repair", "other_service"}
# R1: uses that trigger an investigation when the planned use changes to them (BJ 17).
# An unknown planned use counts, as it does for GB 36600 class 1.
SENSITIVE_USES = {"R", "B", "A33", "A5", "A6", "G1", "G", "unknown"}
# Law 59 ¶2: a change to residential or public administration and public service use
# needs an investigation whatever the current use.
LAW59_USES = {"R", "A", "A33", "A5", "A6"}
# The GB 50137 group of each current use, to tell a change of use from staying put.
CURRENT_USE_GROUP = {
    "residential": "R",
    "public_service": "A",
    "commercial": "B",
    "green_space": "G",
    "industrial": "M",
}
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


def _group(code: str) -> str:
    return "A" if code.startswith("A") else code


def _use_changes(facts: Facts, planned: str) -> bool:
    current = CURRENT_USE_GROUP.get(str(facts.get("current_use")))
    return current is None or current != _group(planned)


def r1_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    planned = _planned_code(facts)
    changes = _use_changes(facts, planned)
    return {
        "site_kind": _site_kind(facts),
        "right_status": facts.get("right_status"),
        "planned_use": planned,
        "sensitive_planned_use": planned in SENSITIVE_USES,
        "change_to_residential_or_public": changes and planned in LAW59_USES,
        "use_changes": changes,
        "key_supervised_unit": bool(facts.get("key_supervised_unit", False)),
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
    # A determination (Law 48) names the polluter, or finds that none can be determined.
    determination = context.get("determination") or "none"
    polluter = context.get("determined_polluter") or facts.get("polluter") or {}
    transferee = facts.get("transferee") or {}
    land_user = facts.get("land_user") or {}
    return {
        "right_status": facts.get("right_status"),
        "polluter_status": polluter.get("status", "unknown"),
        "polluter_is_former_right_holder": bool(polluter.get("is_former_right_holder", False)),
        "has_transferee": bool(transferee),
        "has_agreed_party": bool(transferee.get("agreed_responsible")),
        "determination": determination,
        # who each outcome binds to the parcel (the table's rows name them in `details`)
        "polluter_id": polluter.get("id"),
        "polluter_name": polluter.get("name"),
        "successor_id": polluter.get("successor_id"),
        "successor_name": polluter.get("successor"),
        "transferee_id": transferee.get("id"),
        "transferee_name": transferee.get("name"),
        "agreed_party_id": transferee.get("agreed_responsible_id"),
        "agreed_party_name": transferee.get("agreed_responsible"),
        "land_user_id": land_user.get("id"),
        "land_user_name": land_user.get("name"),
        "district": facts.get("district"),
    }


def _samples(context: Context, facts: Facts) -> list[dict[str, Any]]:
    samples = context.get("samples", facts.get("samples") or [])
    return samples if isinstance(samples, list) else []


def _sample_record(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """How a decision records its samples: their digest (the stored blob's name) and count."""
    return {"samples_sha256": sha256_json(samples), "sample_count": len(samples)}


def r5_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    samples = _samples(context, facts)
    planned = facts.get("planned_use") or "unknown"
    evaluation = gb_standards.evaluate_construction(samples, planned)
    return {
        "planned_use": evaluation["planned_use"],
        "land_class": evaluation["land_class"],
        **_sample_record(samples),
        "worst": evaluation["worst"],
        "exceedances": gb_standards.by_item(evaluation["exceedances"]),
        "exempt": gb_standards.by_item(evaluation["exempt"]),
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


def _failing(targets: list[dict[str, Any]], figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Targets the evaluator's figures do not meet: over the target, or not measured."""
    measured: dict[str, float] = {}
    for figure in figures:
        key = _item_key(str(figure.get("item", "")))
        measured[key] = max(measured.get(key, 0.0), float(figure.get("value_mg_kg", 0.0)))
    failing = []
    for target in targets:
        value = measured.get(_item_key(str(target.get("item", ""))))
        if value is None or value > float(target["target_mg_kg"]):
            failing.append(
                {
                    "item": target["item"],
                    "target_mg_kg": target["target_mg_kg"],
                    "value_mg_kg": value,
                }
            )
    return failing


def _item_key(name: str) -> str:
    item = gb_standards.find_item(name)
    return str(item["cas"] or item["item_en"]) if item else name.strip().casefold()


def r8_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    evaluation = context.get("evaluation") or {}
    targets = context.get("targets") or []
    failing = _failing(targets, evaluation.get("results") or [])
    evaluator = context.get("evaluator") or ""
    contractors = context.get("contractors") or []
    return {
        "evaluator_met": bool(evaluation.get("met", False)),
        "targets_met": not failing,
        "independent": bool(evaluator) and evaluator not in contractors,
        "has_targets": bool(targets),
        "evaluator": evaluator or "(none commissioned)",
        "targets": len(targets),
        "failing": failing,
        "failing_items": ", ".join(f["item"] for f in failing) or "none",
    }


def _key_pollutant(name: str) -> str | None:
    item = gb_standards.find_item(name)
    english = (item["item_en"] if item else name).strip().casefold()
    if english in PAH_NAMES:
        return "PAHs"
    return KEY_POLLUTANT_GROUPS.get(english)


def r9_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    samples = _samples(context, facts)
    found = sorted({k for s in samples if (k := _key_pollutant(str(s.get("item", ""))))})
    return {"key_pollutants": found, "has_key_pollutant": bool(found)}


def r10_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    samples = _samples(context, facts)
    ph = context.get("ph", facts.get("ph"))
    farmland_type = context.get("farmland_type", facts.get("farmland_type")) or "other"
    if ph is None:
        raise ValueError("ph is required to classify farmland (GB 15618)")
    evaluation = gb_standards.evaluate_farmland(samples, ph, farmland_type)
    return {
        "ph": ph,
        "ph_band": evaluation["ph_band"],
        "farmland_type": farmland_type,
        **_sample_record(samples),
        "worst": evaluation["worst"],
        "exceedances": gb_standards.by_item(evaluation["exceedances"]),
    }


def r11_inputs(facts: Facts, context: Context) -> dict[str, Any]:
    return {
        "risk_level": context.get("risk_level") or "assessment_required",
        "acceptable": bool(context.get("acceptable", False)),
        "recommendation": context.get("recommendation") or "none",
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
    "R11": r11_inputs,
}
