"""The durable-rules host: start-up checks, versions, concurrency, what a decision records."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import durable_rules_engine  # type: ignore[import-not-found]
import pytest

from api.app import create_app
from landflow.messages import sha256_json
from rules import engine as engine_module
from rules.engine import TABLES_DIR, RulesEngine, RulesFileError
from rules.features import RULE_INPUTS
from tests.conftest import make_settings
from tests.unit.rules.test_tables import CASES, evaluate

R1 = "r01_investigation_required.yaml"
R3 = "r03_closure_screening.yaml"
R4 = "r04_remediator.yaml"
R6 = "r06_demolition_filing.yaml"
LAW45_NOTE = (
    "law_over_plan: BJ 28 (2016) gives an unclear polluter's duty to the district "
    "government; Law 45 ¶1 (2019), the later law, gives it to the holder of the land-use right"
)


@pytest.fixture(scope="module")
def engine() -> RulesEngine:
    return RulesEngine()


def copy_tables(tmp_path: Path) -> Path:
    target = tmp_path / "tables"
    shutil.copytree(TABLES_DIR, target)
    return target


def edit(directory: Path, name: str, old: str, new: str) -> None:
    path = directory / name
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# --- malformed tables stop start-up, naming file, row and problem ---------------------


@pytest.mark.parametrize(
    ("name", "old", "new", "names"),
    [
        pytest.param(
            R3,
            "when: {enterprise_closed: true}",
            "when: {closed: true}",
            ["R3.1", "'closed'", "not a declared input"],
            id="unknown input in when",
        ),
        pytest.param(
            R3,
            "outcome: required\n",
            "outcome: maybe\n",
            ["R3.1", "'maybe'", "not one of"],
            id="outcome not declared",
        ),
        pytest.param(
            R3,
            "when: {enterprise_closed: true}",
            "when: {enterprise_closed: perhaps}",
            ["R3.1", "enterprise_closed cannot be ['perhaps']"],
            id="value not allowed for input",
        ),
        pytest.param(
            R4,
            "when: {polluter_status: gone}",
            "when: {polluter_status: [gone, vanished]}",
            ["R4.9", "polluter_status cannot be ['vanished']"],
            id="one value of a list not allowed",
        ),
        pytest.param(
            R3,
            "when: {enterprise_closed: true}",
            "when: {}",
            ["R3.1", "'when' must be a non-empty mapping"],
            id="empty when",
        ),
        pytest.param(
            R3,
            "default:\n  id: R3.0",
            "default:\n  when: {enterprise_closed: false}\n  id: R3.0",
            ["R3.0", "the default row takes no 'when'"],
            id="when on the default row",
        ),
        pytest.param(
            R4, "- id: R4.3", "- id: R4.2", ["R4.2", "duplicate row id"], id="duplicate row id"
        ),
        pytest.param(
            R3,
            "- id: R3.1",
            "- id: R4.1",
            ["'R4.1'", "must start with 'R3.'"],
            id="row id of another rule",
        ),
        pytest.param(
            R6,
            "default:\n  id: R6.0",
            "fallback:\n  id: R6.0",
            ["R6", "'default' is missing"],
            id="missing default",
        ),
        pytest.param(R3, "version: 1", "version: one", ["R3", "version must be"], id="bad version"),
        pytest.param(R3, "version: 1", "version: 0", ["R3", "version must be"], id="version 0"),
        pytest.param(
            R3,
            "hit_policy: first",
            "hit_policy: collect",
            ["R3", "hit_policy must be 'first'"],
            id="another hit policy",
        ),
        pytest.param(
            R3,
            "  zh: 关停企业",
            "  cn: 关停企业",
            ["R3", "statement needs 'zh' and 'en'"],
            id="statement without zh",
        ),
        pytest.param(
            R3,
            "  enterprise_closed: [true, false]",
            "  enterprise_closed: true",
            ["R3", "inputs must map each name to its values"],
            id="input without its values",
        ),
        pytest.param(
            R3,
            "  enterprise_closed: [true, false]",
            "  enterprise_closed: [true, false]\n  sid: [a, b]",
            ["R3", "['sid']", "reserved"],
            id="reserved input name",
        ),
        pytest.param(
            R6,
            "details: {bureaus: [district_economy_it, district_epb, district_safety]}",
            "details: [district_epb]",
            ["R6.1", "'details' must be a mapping"],
            id="details not a mapping",
        ),
        pytest.param(
            R4,
            LAW45_NOTE,
            "law_over_plan: ''",
            ["R4.2", "'law_over_plan' must be a sentence"],
            id="empty law-over-plan note",
        ),
        pytest.param(R3, "rule: R3", "rule: R99", ["unknown rule id 'R99'"], id="unknown rule"),
        pytest.param(
            R3,
            "  - id: R3.1\n    when: {enterprise_closed: true}",
            "  - id: R3.1\n    when: {enterprise_closed: true",
            ["cannot read", "line"],
            id="YAML syntax",
        ),
        pytest.param(
            R6, "  because: the site", "  because: ''  #", ["R6.0", "'because'"], id="empty text"
        ),
    ],
)
def test_malformed_rules_file_stops_start_up(
    tmp_path: Path, name: str, old: str, new: str, names: list[str]
) -> None:
    tables = copy_tables(tmp_path)
    edit(tables, name, old, new)
    with pytest.raises(RulesFileError) as raised:
        RulesEngine(tables)
    message = str(raised.value)
    assert message.startswith(name), message
    for part in names:
        assert part in message, message


def test_a_misspelt_row_key_is_refused(tmp_path: Path) -> None:
    """A typo such as `detials:` on R1.2 would silently drop the Law 67 registry flag."""
    tables = copy_tables(tmp_path)
    edit(tables, R1, "    details: {real_estate_registry: true}", "    detials: {x: 1}")
    with pytest.raises(RulesFileError) as raised:
        RulesEngine(tables)
    message = str(raised.value)
    assert message.startswith(R1) and "R1.2" in message and "'detials'" in message, message


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    tables = copy_tables(tmp_path)
    (tables / "r11_listing.yaml").unlink()
    with pytest.raises(RulesFileError, match=r"no table for R11$"):
        RulesEngine(tables)


def test_a_rule_declared_twice_is_named(tmp_path: Path) -> None:
    tables = copy_tables(tmp_path)
    shutil.copy(tables / R3, tables / "r12_closure_again.yaml")
    with pytest.raises(RulesFileError) as raised:
        RulesEngine(tables)
    assert str(raised.value) == f"r12_closure_again.yaml: R3 is also declared in {R3}"


def test_the_api_refuses_to_start_with_a_malformed_rules_file(tmp_path: Path) -> None:
    tables = copy_tables(tmp_path)
    edit(tables, R3, "outcome: required\n", "outcome: maybe\n")
    with pytest.raises(RulesFileError, match=r"R3\.1"):
        create_app(make_settings(tmp_path, rules_dir=tables))


# --- defaults and refused inputs ------------------------------------------------------


def test_nothing_matching_gives_the_default_row(engine: RulesEngine) -> None:
    facts = {"current_use": "commercial", "right_status": "held", "planned_use": "B"}
    for _ in range(3):  # a no-match is safe to repeat (durable-rules never sees one)
        decision = engine.evaluate("R1", facts)
        assert (decision.row, decision.outcome) == ("R1.0", "not_required")
        assert decision.citation == engine.tables["R1"].default.citation
    assert engine.evaluate("R3", {}).row == "R3.0"


def assert_no_session_left(engine: RulesEngine) -> None:
    """Each decision's session is deleted once its rule fired: the engine keeps nothing."""
    last = next(engine_module._sids) - 1
    for table in engine.tables.values():
        handle = engine._handles[table.ruleset_name]
        for sid in range(max(1, last - 50), last + 1):
            with pytest.raises(durable_rules_engine.error, match="error code: 309"):
                durable_rules_engine.get_state(handle, str(sid))


def test_an_input_outside_the_table_is_refused(engine: RulesEngine) -> None:
    with pytest.raises(ValueError, match="R2: input right_status=None is not one of"):
        engine.evaluate("R2", {})
    with pytest.raises(ValueError, match="polluter_status='vanished'"):
        engine.evaluate("R4", {"right_status": "held", "polluter": {"status": "vanished"}})
    with pytest.raises(ValueError, match="determination='maybe'"):
        engine.evaluate("R4", {"right_status": "held"}, {"determination": "maybe"})
    assert_no_session_left(engine)


def test_samples_the_standards_do_not_know_are_refused(engine: RulesEngine) -> None:
    with pytest.raises(ValueError, match="invalid samples"):
        engine.evaluate("R5", {"planned_use": "R"}, {"samples": [{"item": "铬", "value_mg_kg": 9}]})
    with pytest.raises(ValueError, match="ph is required"):
        engine.evaluate("R10", {}, {"samples": [{"item": "Cd", "value_mg_kg": 0.1}]})


# --- versions and digests -------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_text(encoding="utf-8").encode()).hexdigest()[:8]


def test_catalogue_lists_every_rule_with_version_and_digest(engine: RulesEngine) -> None:
    catalogue = engine.catalogue()
    assert [entry["id"] for entry in catalogue] == [f"R{n}" for n in range(1, 12)]
    versions = {entry["id"]: entry["version"] for entry in catalogue}
    assert {r: v for r, v in versions.items() if v != 1} == {"R1": 3, "R4": 2, "R5": 2, "R8": 3}
    for entry in catalogue:
        table = engine.tables[entry["id"]]
        assert entry["statement"]["zh"] and entry["statement"]["en"] and entry["citation"]
        assert entry["hit_policy"] == "first"
        assert entry["ruleset"] == f"{entry['id']}_v{table.version}_{_digest(table.path)}"
        assert entry["rows"][-1]["id"] == table.default.id
        assert {r["outcome"] for r in entry["rows"]} <= set(entry["outcomes"])
    r4 = next(e for e in catalogue if e["id"] == "R4")
    assert r4["citation"] == "BJ 28; Law 45, 47, 48, 68"
    assert {r["outcome"] for r in r4["rows"]} == set(r4["outcomes"])
    notes = {r["id"] for r in r4["rows"] if r["law_over_plan"]}
    assert notes == {"R4.2", "R4.3", "R4.4"}
    json.dumps(catalogue, ensure_ascii=False)


def test_two_versions_coexist_in_one_process(tmp_path: Path, engine: RulesEngine) -> None:
    """A new version registers a new ruleset beside the old one; both keep deciding."""
    tables = copy_tables(tmp_path)
    edit(tables, R3, "version: 1", "version: 2")
    edit(tables, R3, "because: no closed enterprise", "because: no enterprise has closed")
    newer = RulesEngine(tables)
    facts: dict[str, Any] = {"enterprise_closed": False}
    old, new = engine.evaluate("R3", facts), newer.evaluate("R3", facts)
    assert (old.version, new.version) == (1, 2)
    assert old.explanation == "no closed enterprise on the site"
    assert new.explanation == "no enterprise has closed on the site"
    assert newer.tables["R3"].ruleset_name.startswith("R3_v2_")
    assert engine.evaluate("R3", {"enterprise_closed": True}).version == 1


def test_an_edit_without_a_new_version_gets_its_own_digest(
    tmp_path: Path, engine: RulesEngine
) -> None:
    """Two texts under one version never share a ruleset (they cannot be re-registered)."""
    tables = copy_tables(tmp_path)
    edit(tables, R3, "because: no closed enterprise", "because: nothing closed")
    edited = RulesEngine(tables)
    ours, theirs = engine.tables["R3"], edited.tables["R3"]
    assert ours.version == theirs.version
    assert ours.ruleset_name != theirs.ruleset_name
    assert theirs.ruleset_name == f"R3_v1_{_digest(tables / R3)}"
    assert edited.evaluate("R3", {}).explanation == "nothing closed on the site"
    assert engine.evaluate("R3", {}).explanation == "no closed enterprise on the site"


def test_reloading_the_same_tables_is_harmless(engine: RulesEngine) -> None:
    again = RulesEngine()
    assert again.evaluate("R3", {"enterprise_closed": True}).row == "R3.1"
    assert again.tables["R3"].ruleset_name == engine.tables["R3"].ruleset_name


# --- concurrency ----------------------------------------------------------------------


def _essence(decision: Any) -> tuple[Any, ...]:
    return (
        decision.row,
        decision.outcome,
        decision.explanation,
        json.dumps(decision.details, sort_keys=True, ensure_ascii=False),
        json.dumps(decision.inputs, sort_keys=True, ensure_ascii=False),
    )


def test_concurrent_decisions_get_their_own_outcome(engine: RulesEngine) -> None:
    """16 threads x 400 decisions over every case, started together: each equals the
    decision made alone, with its own id; nothing is left in the host."""
    alone = [_essence(evaluate(engine, rule, case)) for rule, case in CASES]
    barrier = threading.Barrier(16)

    def run(seed: int) -> list[str]:
        rnd = random.Random(seed)
        barrier.wait()
        wrong = []
        for n in range(400):
            index = rnd.randrange(len(CASES))
            rule, case = CASES[index]
            decision = evaluate(engine, rule, case, decision_id=f"{seed}/{n}")
            if decision.id != f"{seed}/{n}" or _essence(decision) != alone[index]:
                wrong.append(f"{rule} {case['name']}: got {decision.row} {decision.outcome}")
        return wrong

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(run, range(16)))
    assert [w for ws in results for w in ws] == []
    assert_no_session_left(engine)


# --- what a decision records ----------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "case"), CASES, ids=[f"{rule}: {case['name']}" for rule, case in CASES]
)
def test_a_value_in_details_is_not_repeated_in_inputs(
    engine: RulesEngine, rule: str, case: dict[str, Any]
) -> None:
    """A `$name` detail moves that value out of the inputs (unless the table reads it)."""
    table = engine.tables[rule]
    seen = RULE_INPUTS[rule](case.get("facts") or {}, case.get("context") or {})
    decision = evaluate(engine, rule, case)
    declared = {**table.details, **table.row_by_id[decision.row].details}
    moved = set()
    for key, value in declared.items():
        if isinstance(value, str) and value.startswith("$"):
            assert decision.details[key] == seen[value[1:]], key
            moved.add(value[1:])
        else:
            assert decision.details[key] == value, key
    kept = {k for k in seen if k not in moved or k in table.inputs}
    assert set(decision.inputs) == kept
    assert all(decision.inputs[k] == seen[k] for k in kept)


def test_a_bound_party_is_in_details_only(engine: RulesEngine) -> None:
    facts = {
        "right_status": "held",
        "land_user": {"id": "91110105LANDUSER01", "name": "北京焦化厂有限公司"},
        "polluter": {"id": "91110105POLLUTER01", "name": "北京焦化厂", "status": "exists"},
    }
    decision = engine.evaluate("R4", facts)
    assert decision.details == {
        "party_role": "responsible_party",
        "party_id": "91110105POLLUTER01",
        "party_name": "北京焦化厂",
    }
    assert "polluter_id" not in decision.inputs and "polluter_name" not in decision.inputs
    # the land user is not who this row binds: it stays among the inputs
    assert decision.inputs["land_user_id"] == "91110105LANDUSER01"


@pytest.mark.parametrize(
    ("rule", "facts", "context"),
    [
        ("R5", {"planned_use": "R"}, {}),
        ("R10", {"current_use": "farmland"}, {"ph": 6.0, "farmland_type": "other"}),
    ],
)
def test_samples_are_recorded_by_digest_and_count(
    engine: RulesEngine, rule: str, facts: dict[str, Any], context: dict[str, Any]
) -> None:
    """A thousand samples make a decision no larger than two do (ENGINE-NOTES.md)."""
    # cadmium over GB 36600 class 1 screening (20) and over GB 15618 intervention (2.0)
    many = [{"item": "Cd", "value_mg_kg": 25 + n / 1000, "depth_m": n / 100} for n in range(1000)]
    few = many[:2]
    big = engine.evaluate(rule, facts, {**context, "samples": many})
    small = engine.evaluate(rule, facts, {**context, "samples": few})
    for decision, samples in ((big, many), (small, few)):
        assert decision.inputs["samples_sha256"] == sha256_json(samples)
        assert decision.inputs["sample_count"] == len(samples)
        assert "samples" not in decision.inputs
        assert not any(isinstance(v, list | dict) for v in decision.inputs.values())
        assert all("index" not in e and "depth_m" not in e for e in decision.details["exceedances"])
    assert set(big.inputs) == set(small.inputs)
    assert len(big.model_dump_json()) < len(small.model_dump_json()) + 100
    (cadmium,) = big.details["exceedances"]
    assert (cadmium["samples"], cadmium["max_mg_kg"]) == (1000, 25.999)
