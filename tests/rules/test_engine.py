"""The durable-rules host: start-up checks, concurrency, defaults, catalogue, versions."""

from __future__ import annotations

import random
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from rules import engine as engine_module
from rules.engine import TABLES_DIR, RulesEngine, RulesFileError
from tests.conftest import make_settings
from tests.rules.test_tables import CASES


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


R3 = "r03_closure_screening.yaml"
R4 = "r04_remediator.yaml"
R6 = "r06_demolition_filing.yaml"


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
            R4, "- id: R4.3", "- id: R4.2", ["R4.2", "duplicate row id"], id="duplicate row id"
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


def test_a_missing_table_is_named(tmp_path: Path) -> None:
    tables = copy_tables(tmp_path)
    (tables / R6).unlink()
    with pytest.raises(RulesFileError, match="no table for R6"):
        RulesEngine(tables)


def test_the_api_refuses_to_start_with_a_malformed_rules_file(tmp_path: Path) -> None:
    tables = copy_tables(tmp_path)
    edit(tables, R3, "outcome: required\n", "outcome: maybe\n")
    with pytest.raises(RulesFileError, match=r"R3\.1"):
        create_app(make_settings(tmp_path, rules_dir=tables))


def test_nothing_matching_gives_the_default_row(engine: RulesEngine) -> None:
    facts = {"current_use": "commercial", "right_status": "held", "planned_use": "B"}
    for _ in range(3):  # a no-match is safe to repeat (durable-rules never sees one)
        decision = engine.evaluate("R1", facts)
        assert (decision.row, decision.outcome) == ("R1.0", "not_required")
        assert decision.citation == engine.tables["R1"].default.citation
    assert engine.evaluate("R3", {}).row == "R3.0"


def test_an_input_outside_the_table_is_refused(engine: RulesEngine) -> None:
    with pytest.raises(ValueError, match="right_status=None is not one of"):
        engine.evaluate("R2", {})


def test_concurrent_decisions_get_their_own_outcome(engine: RulesEngine) -> None:
    """16 threads x 500 decisions over every case, started together: no error, no cross-talk."""
    barrier = threading.Barrier(16)

    def run(seed: int) -> list[str]:
        rnd = random.Random(seed)
        barrier.wait()
        wrong = []
        for n in range(500):
            rule, case = rnd.choice(CASES)
            decision = engine.evaluate(
                rule, case.get("facts") or {}, case.get("context") or {}, decision_id=f"{seed}/{n}"
            )
            expected = case["expected"]
            party = (expected.get("details") or {}).get("party_name")
            if (
                decision.row != expected["row"]
                or decision.outcome != expected["outcome"]
                or decision.id != f"{seed}/{n}"
                or (party and decision.details["party_name"] != party)
            ):
                wrong.append(f"{rule} {case['name']}: got {decision.row} {decision.outcome}")
        return wrong

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(run, range(16)))
    assert [w for ws in results for w in ws] == []
    assert engine_module._fired == {}, "a fired row was left behind"


def test_catalogue_lists_every_rule(engine: RulesEngine) -> None:
    catalogue = engine.catalogue()
    assert [entry["id"] for entry in catalogue] == [f"R{n}" for n in range(1, 11)]
    for entry in catalogue:
        assert entry["statement"]["zh"] and entry["statement"]["en"]
        assert entry["citation"] and entry["version"] == 1
        assert entry["ruleset"].startswith(f"{entry['id']}_v1_")
        assert entry["rows"][-1]["id"] == engine.tables[entry["id"]].default.id
    r4 = next(e for e in catalogue if e["id"] == "R4")
    assert r4["citation"] == "BJ 28; Law 45, 47, 48, 68"
    assert {r["outcome"] for r in r4["rows"]} == set(r4["outcomes"])


def bump_version(tables: Path, name: str, version: int) -> None:
    edit(tables, name, "version: 1", f"version: {version}")


def test_two_versions_coexist_in_one_process(tmp_path: Path, engine: RulesEngine) -> None:
    """A new version registers a new ruleset beside the old one; both keep deciding."""
    tables = copy_tables(tmp_path)
    bump_version(tables, R3, 2)
    edit(tables, R3, "because: no closed enterprise", "because: no enterprise has closed")
    newer = RulesEngine(tables)
    facts: dict[str, Any] = {"enterprise_closed": False}
    old, new = engine.evaluate("R3", facts), newer.evaluate("R3", facts)
    assert (old.version, new.version) == (1, 2)
    assert old.explanation == "no closed enterprise on the site"
    assert new.explanation == "no enterprise has closed on the site"
    assert engine.tables["R3"].ruleset_name != newer.tables["R3"].ruleset_name
    assert engine.evaluate("R3", {"enterprise_closed": True}).version == 1


def test_reloading_the_same_tables_is_harmless(engine: RulesEngine) -> None:
    again = RulesEngine()
    assert again.evaluate("R3", {"enterprise_closed": True}).row == "R3.1"
    assert again.tables["R3"].ruleset_name == engine.tables["R3"].ruleset_name
