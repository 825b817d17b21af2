"""The rules API: catalogue, dry-run on real parcels, recorded decisions, and versions."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from landflow.worker import build_worker
from rules.engine import TABLES_DIR
from tests.conftest import api_client, make_settings
from tests.helpers import DIRTY_SAMPLES, REPORT, act, auth, facts, get, start

COKING_PLANT = facts("BJ-COKING", samples=DIRTY_SAMPLES)  # 原北京焦化厂, 朝阳区
SHOUGANG = {
    "parcel_id": "BJ-SHOUGANG",
    "name": "首钢主厂区",
    "district": "石景山区",
    "area_m2": 7_070_000,
    "current_use": "industrial",
    "industry": "other",  # iron and steel is not among the BJ 9 industries
    "enterprise_closed": True,
    "right_status": "recovered",
    "planned_use": "B",  # commercial: GB 36600 class 2
    "polluter": {"name": "首钢集团", "status": "exists", "is_former_right_holder": True},
    "samples": [
        # above the class 1 screening values (0.55 and 400), below the class 2 ones (1.5, 800)
        {"item": "苯并[a]芘", "value_mg_kg": 1.2},
        {"item": "Lead", "value_mg_kg": 700},
        {"item": "7440-38-2", "value_mg_kg": 45},
    ],
}
FARMLAND = {
    "parcel_id": "BJ-FARM",
    "name": "某镇耕地",
    "district": "顺义区",
    "area_m2": 30_000,
    "current_use": "farmland",
    "right_status": "held",
    "planned_use": "residential",
    "farmland_class": "strict_control",
    "ph": 6.0,
    "farmland_type": "other",
    "samples": [{"item": "镉", "value_mg_kg": 2.5}],
}


async def dry_run(api: httpx.AsyncClient, body: dict[str, Any], expect: int = 200) -> Any:
    response = await api.post("/rules/evaluate", json=body, headers=auth("reserve_agency"))
    assert response.status_code == expect, response.text
    return response.json()


def by_rule(decisions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["rule"]: d for d in decisions}


def summary(decisions: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(d["rule"], d["row"], d["outcome"], d["citation"]) for d in decisions]


async def test_catalogue_lists_r1_to_r10(api):
    response = await api.get("/rules", headers=auth("public"))
    assert response.status_code == 200, response.text
    rules = response.json()["rules"]
    assert [r["id"] for r in rules] == [f"R{n}" for n in range(1, 11)]
    for rule in rules:
        assert rule["statement"]["zh"] and rule["statement"]["en"]
        assert rule["citation"] and rule["version"] == 1 and rule["rows"]
    assert rules[4]["citation"] == "GB 36600 4, 5; Law 60"


async def test_the_rules_need_a_token(api):
    assert (await api.get("/rules")).status_code == 401
    response = await api.post("/rules/evaluate", json=SHOUGANG)
    assert response.status_code == 401 and response.json()["error"] == "Unauthenticated"
    assert (await api.get("/parcels/BJ-COKING/decisions")).status_code == 401


async def test_dry_run_for_the_former_beijing_coking_plant(api):
    decisions = (await dry_run(api, COKING_PLANT))["decisions"]
    assert summary(decisions) == [
        ("R3", "R3.1", "required", "BJ 16"),
        ("R6", "R6.1", "required", "BJ 9"),
        ("R1", "R1.2", "required", "BJ 17; Law 67"),
        ("R2", "R2.2", "reserve_agency", "BJ 17"),
        ("R5", "R5.1", "control_or_remediation", "GB 36600 5.5; Law 60"),
        ("R9", "R9.1", "focus", "BJ 5, 33"),
        ("R4", "R4.1", "district_government", "Law 68"),
    ]
    made = by_rule(decisions)
    assert made["R6"]["details"]["bureaus"] == [
        "district_economy_it",
        "district_epb",
        "district_safety",
    ]
    r5 = made["R5"]
    assert r5["details"]["land_class"] == 1 and r5["inputs"]["planned_use"] == "R"
    assert [
        (e["item"], e["value_mg_kg"], e["screening_value"], e["intervention_value"], e["level"])
        for e in r5["details"]["exceedances"]
    ] == [
        ("Benzo[a]pyrene", 8.5, 0.55, 5.5, "above_intervention"),
        ("Lead", 900.0, 400.0, 800.0, "above_intervention"),
    ]
    assert made["R9"]["inputs"]["key_pollutants"] == ["PAHs", "Pb"]
    assert made["R4"]["inputs"]["polluter_is_former_right_holder"] is True
    for decision in decisions:
        assert decision["version"] == 1 and decision["explanation"] and decision["evaluated_at"]
    # a dry-run starts no workflow and records nothing
    response = await api.get("/parcels/BJ-COKING", headers=auth("auditor"))
    assert response.status_code == 404
    response = await api.get("/parcels/BJ-COKING/decisions", headers=auth("auditor"))
    assert response.status_code == 404


async def test_dry_run_for_shougang_uses_land_class_2(api):
    decisions = (await dry_run(api, SHOUGANG))["decisions"]
    assert summary(decisions) == [
        ("R3", "R3.1", "required", "BJ 16"),
        ("R6", "R6.0", "not_required", "BJ 9"),
        ("R1", "R1.2", "required", "BJ 17; Law 67"),
        ("R2", "R2.2", "reserve_agency", "BJ 17"),
        ("R5", "R5.3", "negligible", "GB 36600 5.2"),
        ("R9", "R9.1", "focus", "BJ 5, 33"),
    ]
    r5 = by_rule(decisions)["R5"]
    assert r5["details"] == {"land_class": 2, "exceedances": [], "exempt": []}

    # the same samples on residential land (class 1) need a risk assessment
    residential = {**SHOUGANG, "planned_use": "residential"}
    r5 = by_rule((await dry_run(api, residential))["decisions"])["R5"]
    assert (r5["outcome"], r5["details"]["land_class"]) == ("assessment_required", 1)
    assert {e["item"] for e in r5["details"]["exceedances"]} == {
        "Benzo[a]pyrene",
        "Lead",
        "Arsenic",
    }

    # who would remediate, asked for explicitly: Law 68
    body = {**SHOUGANG, "context": {"include": ["R4"]}}
    r4 = by_rule((await dry_run(api, body))["decisions"])["R4"]
    assert (r4["outcome"], r4["row"], r4["citation"]) == ("district_government", "R4.1", "Law 68")


async def test_dry_run_for_farmland(api):
    decisions = (await dry_run(api, FARMLAND))["decisions"]
    assert summary(decisions) == [
        ("R3", "R3.0", "not_required", "BJ 16"),
        ("R6", "R6.0", "not_required", "BJ 9"),
        ("R1", "R1.4", "required", "BJ 17"),
        ("R2", "R2.1", "district_government", "BJ 17"),
        ("R9", "R9.1", "focus", "BJ 5, 33"),
        ("R10", "R10.1", "strict_control", "BJ 21; GB 15618 5"),
    ]
    r10 = by_rule(decisions)["R10"]
    assert r10["details"]["ph_band"] == "5.5<ph<=6.5"
    assert r10["details"]["exceedances"][0]["intervention_value"] == 2.0

    no_ph = {k: v for k, v in FARMLAND.items() if k != "ph"}
    refused = await dry_run(api, no_ph, expect=422)
    assert refused["fields"] == [
        {"field": "ph", "reason": "required to classify farmland samples (GB 15618)"}
    ]


async def test_dry_run_context_suspected_file_transport_and_evaluation(api):
    clean = {
        "current_use": "commercial",
        "right_status": "held",
        "planned_use": "commercial",
        "district": "朝阳区",
    }
    decisions = (await dry_run(api, clean))["decisions"]
    assert [(d["rule"], d["outcome"]) for d in decisions] == [
        ("R3", "not_required"),
        ("R6", "not_required"),
        ("R1", "not_required"),
    ]
    context = {
        "suspected_file": True,
        "transport": {
            "origin_district": "朝阳区",
            "destination_district": "大兴区",
            "time": "2027-03-01 22:00",
            "route": "五环",
            "quantity_m3": 100,
            "destination": "大兴区水泥窑",
            "disposal": "cement kiln",
        },
        "evaluation": {"met": True, "evaluator": "某评估公司"},
        "contractor": "北京建工环境修复",
    }
    made = by_rule((await dry_run(api, {**clean, "context": context}))["decisions"])
    assert (made["R1"]["row"], made["R2"]["outcome"]) == ("R1.1", "land_user")
    assert made["R7"]["details"]["report_to"] == ["district_epb:朝阳区", "district_epb:大兴区"]
    assert (made["R8"]["outcome"], made["R8"]["row"]) == ("met", "R8.1")


async def test_unknown_items_and_units_are_each_named(api):
    body = {
        **SHOUGANG,
        "samples": [
            {"item": "unobtainium", "value_mg_kg": 1},
            {"item": "铅", "value_mg_kg": 10},
            {"item": "铅", "value_mg_kg": 10, "unit": "lb/ton"},
            {"item": "kryptonite", "value_mg_kg": 2},
        ],
    }
    refused = await dry_run(api, body, expect=422)
    assert refused["error"] == "InvalidBody"
    assert [(f["field"], f["value"]) for f in refused["fields"]] == [
        ("samples[0].item", "unobtainium"),
        ("samples[2].unit", "lb/ton"),
        ("samples[3].item", "kryptonite"),
    ]
    for name in ("unobtainium", "lb/ton", "kryptonite"):
        assert name in refused["detail"]
    # other mistakes in the facts are named too
    refused = await dry_run(api, {**SHOUGANG, "planned_use": "moonbase"}, expect=422)
    assert refused["fields"][0]["field"] == "planned_use"


async def test_decisions_of_a_parcel_driven_through_steps(api, pid):
    await start(api, facts(pid))
    await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")
    parcel = await act(api, pid, "investigation_report", REPORT, "reserve_agency")
    response = await api.get(f"/parcels/{pid}/decisions", headers=auth("public"))
    assert response.status_code == 200, response.text
    recorded = response.json()
    assert recorded["parcel_id"] == pid
    assert [(d["id"], d["outcome"]) for d in recorded["decisions"]] == [
        (f"{pid}/R3/1", "required"),
        (f"{pid}/R6/1", "required"),
        (f"{pid}/R1/1", "required"),
        (f"{pid}/R2/1", "reserve_agency"),
        (f"{pid}/R5/1", "control_or_remediation"),
        (f"{pid}/R9/1", "focus"),
    ]
    # the registry rows are exactly the decisions in the workflow's state
    assert recorded["decisions"] == parcel["decisions"]
    for decision in recorded["decisions"]:
        assert decision["version"] == 1 and decision["citation"] and decision["inputs"]
    assert recorded["decisions"][2]["inputs"]["suspected_file"] is True

    response = await api.get("/parcels/NOSUCHPARCEL/decisions", headers=auth("auditor"))
    assert response.status_code == 404 and response.json()["error"] == "NotFound"


def tables_with_versions(target: Path, versions: dict[str, int]) -> Path:
    shutil.copytree(TABLES_DIR, target)
    for path in target.glob("r*.yaml"):
        rule = f"R{int(path.name[1:3])}"
        if rule in versions:
            text = path.read_text(encoding="utf-8")
            path.write_text(text.replace("version: 1", f"version: {versions[rule]}", 1), "utf-8")
    return target


async def test_a_new_version_applies_to_later_decisions_only(
    temporal: WorkflowEnvironment, tmp_path: Path, pid: str
):
    """Worker A (all rules v1) makes the first decisions; worker B (R1, R2, R5, R9 at v2)
    replaces it on the same task queue. Earlier decisions keep v1, later ones say v2."""
    shared = make_settings(tmp_path)
    first = shared.model_copy(update={"rules_dir": tables_with_versions(tmp_path / "v1", {})})
    second = shared.model_copy(
        update={
            "rules_dir": tables_with_versions(tmp_path / "v2", {"R1": 2, "R2": 2, "R5": 2, "R9": 2})
        }
    )
    async with httpx.AsyncClient() as http, api_client(first, temporal.client) as api:
        async with build_worker(temporal.client, first, http):
            await start(api, facts(pid))
            parcel = await act(
                api, pid, "closure_screening", {"result": "suspected"}, "district_epb"
            )
            assert [(d["rule"], d["version"]) for d in parcel["decisions"]] == [
                ("R3", 1),
                ("R6", 1),
                ("R1", 1),
                ("R2", 1),
            ]
        async with build_worker(temporal.client, second, http):
            await act(api, pid, "investigation_report", REPORT, "reserve_agency")
            parcel = await get(api, pid)
        expected = [("R3", 1), ("R6", 1), ("R1", 1), ("R2", 1), ("R5", 2), ("R9", 2)]
        assert [(d["rule"], d["version"]) for d in parcel["decisions"]] == expected
        response = await api.get(f"/parcels/{pid}/decisions", headers=auth("auditor"))
        registry_rows = response.json()["decisions"]
        assert [(d["rule"], d["version"]) for d in registry_rows] == expected
        assert registry_rows == parcel["decisions"]
        # the catalogue of a process running the new tables names the new versions
        async with api_client(second, temporal.client) as newer:
            rules = (await newer.get("/rules", headers=auth("auditor"))).json()["rules"]
        assert {r["id"]: r["version"] for r in rules if r["version"] == 2}.keys() == {
            "R1",
            "R2",
            "R5",
            "R9",
        }


@pytest.mark.parametrize("role", ["public", "land_user", "ops"])
async def test_any_authenticated_role_may_dry_run(api, role):
    response = await api.post("/rules/evaluate", json=SHOUGANG, headers=auth(role))
    assert response.status_code == 200, response.text
