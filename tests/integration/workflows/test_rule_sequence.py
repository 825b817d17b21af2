"""The dry-run and a parcel decide the same rules in the same order (one rule sequence).

Every rule case file's facts are registered and walked through the procedure as far as
its context goes (screening, investigation, joint review); the rules the workflow's
`decide` calls made are compared with what `rules.sequence.dry_run` decides.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from landflow.facts import ParcelFacts
from rules.engine import RulesEngine
from rules.sequence import dry_run
from tests.integration.workflows.conftest import Harness

CASES = Path(__file__).resolve().parents[3] / "rules" / "cases"
BASE = {
    "name": "规则用例",
    "district": "朝阳区",
    "area_m2": 1000,
    "current_use": "industrial",
    "right_status": "recovered",
    "planned_use": "residential",
}
PARTY = {"id": "91110105CASEPARTY1", "name": "某公司"}


def _facts(case: dict[str, Any]) -> dict[str, Any] | None:
    facts = {**BASE, **(case.get("facts") or {}), "parcel_id": f"C{uuid.uuid4().hex[:10]}"}
    facts.pop("samples", None)
    if facts.get("right_status") in ("held", "to_be_recovered"):
        facts.setdefault("land_user", PARTY)
    if facts.get("right_status") == "transferred":
        facts.setdefault("transferee", {"id": "91110105TRANSFER01", "name": "某受让人"})
    try:
        ParcelFacts.model_validate(facts)
    except ValidationError:
        return None  # a case of one rule's inputs that no registration could have
    return facts


def _cases() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(CASES.glob("r*.yaml")):
        for case in yaml.safe_load(path.read_text(encoding="utf-8")):
            found.append((f"{path.stem}: {case['name']}", case))
    return found


CASE_LIST = _cases()
SAMPLE = [{"item": "铅", "value_mg_kg": 50.0}]


@pytest.mark.parametrize(("name", "case"), CASE_LIST, ids=[n for n, _ in CASE_LIST])
async def test_dry_run_and_workflow_decide_the_same_rules_in_the_same_order(
    harness: Harness, name, case
):
    facts = _facts(case)
    if facts is None:
        pytest.skip("the case's facts are one rule's inputs, not a registration")
    context = case.get("context") or {}
    samples = context.get("samples") or (case.get("facts") or {}).get("samples") or SAMPLE
    handle = await harness.start(facts)
    state = await harness.state(handle)
    walk: dict[str, Any] = {
        "suspected_file": bool(context.get("suspected_file")),
        "samples": samples,
    }
    if facts["current_use"] == "farmland":
        walk.update(ph=context.get("ph", 6.0), farmland_type=context.get("farmland_type", "other"))
    blocking = state.blocking()
    if blocking is not None and blocking.step.value == "closure_screening":
        result = "suspected" if walk["suspected_file"] else "cleared"
        await harness.act(
            handle,
            "closure_screening",
            {"role": "district_epb", "district": "朝阳区"},
            {"result": result},
        )
        blocking = (await harness.state(handle)).blocking()
    if blocking is not None and blocking.step.value == "investigation":
        owner = blocking.assignees[0]
        investigator = {"role": owner.role.value, "district": owner.district, "party": owner.party}
        body = {
            "extent_m2": 1,
            "degree": "x",
            **{k: walk[k] for k in ("ph", "farmland_type") if k in walk},
        }
        await harness.act(
            handle,
            "investigation_report",
            investigator,
            body,
            samples=harness.samples(samples),
            documents=["investigation_report"],
        )
        for bureau in ("city_epb", "planning_land"):
            await harness.act(handle, "filing_review", {"role": bureau}, {"decision": "accepted"})
    decided = [rule for _, rules in harness.recorded.points for rule in rules]
    expected = [d.rule for d in dry_run(RulesEngine(), facts, walk)]
    assert decided == expected, name
