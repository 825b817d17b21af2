"""GB 36600-2018 and GB 15618-2018 (DOMAIN R5, R10): the tables (rules.gb_tables), the
comparisons (rules.gb_standards), and the outcomes, which only the R5/R10 decision tables
decide (through the engine). How labs write item names is test_item_names.py's."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from rules import gb_standards as gb
from rules import gb_tables
from rules.engine import RulesEngine
from rules.features import r5_inputs, r10_inputs


@pytest.fixture(scope="module")
def engine() -> RulesEngine:
    return RulesEngine()


# --------------------------------------------------------------------------- tables


def test_all_85_construction_items_load() -> None:
    items = gb_tables.construction_items()
    assert len(items) == 85
    assert sum(1 for i in items if i["table"] == 1) == 45
    assert sum(1 for i in items if i["table"] == 2) == 40
    assert {i["item_en"] for i in items if i["background_exempt"]} == {
        "Arsenic",
        "Cobalt",
        "Vanadium",
    }
    assert gb.construction_items() == items
    json.dumps(items)  # plain JSON


@pytest.mark.parametrize("item", gb_tables.construction_items(), ids=lambda i: i["item_en"])
def test_screening_not_above_intervention(item: dict) -> None:
    assert item["screening1"] <= item["intervention1"]
    assert item["screening2"] <= item["intervention2"]
    assert item["screening1"] <= item["screening2"]  # class 1 is never the laxer


def test_construction_items_are_copies() -> None:
    gb_tables.construction_items()[0]["screening1"] = -1
    gb.find_item("Arsenic")["screening1"] = -1  # type: ignore[index]
    assert gb.find_item("Arsenic")["screening1"] == 20  # type: ignore[index]
    assert gb_tables.construction_items()[0]["screening1"] == 20


@pytest.mark.parametrize(
    ("name", "expected_en"),
    [
        ("7440-38-2", "Arsenic"),
        ("108-38-3", "m-Xylene + p-Xylene"),
        ("106-42-3", "m-Xylene + p-Xylene"),
        ("铬（六价）", "Chromium(VI)"),
        ("  LEAD ", "Lead"),
        ("PCBs (total of 12)", "PCBs (total of 12)"),
    ],
)
def test_find_item(name: str, expected_en: str) -> None:
    item = gb.find_item(name)
    assert item is not None
    assert item["item_en"] == expected_en


@pytest.mark.parametrize("name", ["unobtainium", "", "Chromium", "Zinc", "12345-67-8"])
def test_find_item_unknown(name: str) -> None:
    assert gb.find_item(name) is None


# --------------------------------------------------------------------------- planned use


@pytest.mark.parametrize(
    ("planned_use", "code", "cls"),
    [
        ("R", "R", 1),
        ("A33", "A33", 1),
        ("a5", "A5", 1),
        ("A6", "A6", 1),
        ("G1", "G1", 1),
        ("unknown", "unknown", 1),
        ("UNKNOWN", "unknown", 1),
        ("M", "M", 2),
        ("W", "W", 2),
        ("B", "B", 2),
        ("S", "S", 2),
        ("U", "U", 2),
        ("A", "A", 2),
        ("G", "G", 2),
        ("residential", "R", 1),
        ("School", "A33", 1),
        ("medical", "A5", 1),
        ("elderly_care", "A6", 1),
        ("elderly care", "A6", 1),
        ("park", "G1", 1),
        ("playground", "G1", 1),
        ("commercial", "B", 2),
        ("INDUSTRIAL", "M", 2),
        ("logistics", "W", 2),
        ("green_space", "G", 2),
        ("green-space", "G", 2),
    ],
)
def test_planned_use_and_land_class(planned_use: str, code: str, cls: int) -> None:
    assert gb.normalize_planned_use(planned_use) == code
    assert gb.land_class(planned_use) == cls
    assert code in gb.GB50137_CODES


@pytest.mark.parametrize("bad", ["farm", "", "R1", None, 3])
def test_bad_planned_use_raises(bad: object) -> None:
    with pytest.raises(ValueError, match="accepted values"):
        gb.land_class(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        gb.evaluate_construction([], bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- GB 36600 evaluation


def _eval(item: str, value: float, planned_use: str = "R", **extra: object) -> dict:
    return gb.evaluate_construction([{"item": item, "value_mg_kg": value, **extra}], planned_use)


@pytest.mark.parametrize(
    ("item", "value", "planned_use", "worst"),
    [
        # Lead: class 1 screening 400 / intervention 800; class 2 800 / 2500.
        ("Lead", 399.9, "R", "none"),
        ("Lead", 400, "R", "none"),  # equal to screening: negligible
        ("Lead", 400.01, "R", "above_screening"),
        ("Lead", 800, "R", "above_screening"),  # equal to intervention: not above it
        ("Lead", 800.01, "R", "above_intervention"),
        ("Lead", 500, "R", "above_screening"),
        ("Lead", 500, "M", "none"),  # same value, class 2
        ("Lead", 2500, "M", "above_screening"),
        ("Lead", 2500.5, "M", "above_intervention"),
        ("Lead", 500, "unknown", "above_screening"),  # unknown -> class 1
        ("镉", 47.1, "school", "above_intervention"),
        ("7440-43-9", 47.1, "industrial", "none"),
        ("Benzene", 0, "R", "none"),
    ],
)
def test_construction_levels(item: str, value: float, planned_use: str, worst: str) -> None:
    result = _eval(item, value, planned_use)
    assert result["worst"] == worst
    assert len(result["exceedances"]) == (0 if worst == "none" else 1)
    if worst != "none":
        assert result["exceedances"][0]["level"] == worst


def test_construction_result_shape() -> None:
    result = gb.evaluate_construction(
        [{"item": "铅", "value_mg_kg": 900, "depth_m": 0.5}], "residential"
    )
    assert result == {
        "land_class": 1,
        "planned_use": "R",
        "worst": "above_intervention",
        "exceedances": [
            {
                "index": 0,
                "item": "Lead",
                "item_zh": "铅",
                "cas": "7439-92-1",
                "value_mg_kg": 900.0,
                "screening_value": 400.0,
                "intervention_value": 800.0,
                "level": "above_intervention",
                "depth_m": 0.5,
            }
        ],
        "exempt": [],
    }
    json.dumps(result)


def test_each_sample_judged_separately() -> None:
    samples = [
        {"item": "Lead", "value_mg_kg": 100, "depth_m": 0.2},
        {"item": "Lead", "value_mg_kg": 500, "depth_m": 1.0},
        {"item": "lead", "value_mg_kg": 900, "depth_m": 3.0},
        {"item": "Benzene", "value_mg_kg": 2},
    ]
    result = gb.evaluate_construction(samples, "R")
    assert result["worst"] == "above_intervention"
    assert [(e["index"], e["item"], e["level"], e["depth_m"]) for e in result["exceedances"]] == [
        (1, "Lead", "above_screening", 1.0),
        (2, "Lead", "above_intervention", 3.0),
        (3, "Benzene", "above_screening", None),
    ]


@pytest.mark.parametrize(
    ("item", "value", "background", "exempt"),
    [
        ("Arsenic", 25, 30, True),  # class 1 screening 20
        ("Arsenic", 30, 30, True),  # equal to background: exempt
        ("Arsenic", 30.5, 30, False),
        ("Arsenic", 25, None, False),
        ("Arsenic", 130, 150, True),  # even above intervention (120), within background
        ("Cobalt", 25, 40, True),  # screening 20
        ("Vanadium", 200, 250, True),  # screening 165
        ("钒", 200, 180, False),
        ("Lead", 500, 600, False),  # no footnote a for lead
        ("Cadmium", 25, 30, False),
    ],
)
def test_background_exemption(
    item: str, value: float, background: float | None, exempt: bool
) -> None:
    result = _eval(item, value, "R", background_mg_kg=background)
    assert len(result["exempt"]) == (1 if exempt else 0)
    assert len(result["exceedances"]) == (0 if exempt else 1)
    if exempt:
        assert result["worst"] == "none"
        entry = result["exempt"][0]
        assert entry["background_mg_kg"] == background
        assert entry["value_mg_kg"] == value
        assert "level" not in entry
        assert "footnote a" in entry["reason"]
    else:
        assert result["worst"] != "none"


def test_background_below_screening_is_just_negligible() -> None:
    result = _eval("Arsenic", 15, "R", background_mg_kg=10)
    assert result["worst"] == "none"
    assert result["exempt"] == []
    assert result["exceedances"] == []


def test_background_is_converted_with_the_value() -> None:
    result = _eval("Arsenic", 25_000, "R", unit="ug/kg", background_mg_kg=30_000)
    assert [(e["value_mg_kg"], e["background_mg_kg"]) for e in result["exempt"]] == [(25.0, 30.0)]


@pytest.mark.parametrize(
    ("value", "unit", "expected_mg_kg", "worst"),
    [
        (400_000, "ug/kg", 400.0, "none"),  # exactly screening after conversion
        (400_010, "μg/kg", 400.01, "above_screening"),
        (900_000, "µg/kg", 900.0, "above_intervention"),
        (0.9, "g/kg", 900.0, "above_intervention"),
        (500, "mg_kg", 500.0, "above_screening"),
        (500, "MG/KG", 500.0, "above_screening"),
    ],
)
def test_unit_conversion(value: float, unit: str, expected_mg_kg: float, worst: str) -> None:
    result = _eval("Lead", value, "R", unit=unit)
    assert result["worst"] == worst
    if worst != "none":
        assert result["exceedances"][0]["value_mg_kg"] == pytest.approx(expected_mg_kg)


def test_units_table() -> None:
    assert gb.UNITS["mg/kg"] == gb.UNITS["mg_kg"] == 1
    assert gb.UNITS["ug/kg"] == gb.UNITS["μg/kg"] == gb.UNITS["µg/kg"] == 0.001
    assert gb.UNITS["g/kg"] == 1000


# --------------------------------------------------------------------------- sample problems


def test_sample_problems_empty_when_good() -> None:
    assert gb.sample_problems([{"item": "Lead", "value_mg_kg": 1, "unit": "ug/kg"}]) == []
    assert gb.sample_problems([]) == []


def test_sample_problems_lists_every_bad_sample() -> None:
    samples: list[Any] = [
        {"item": "Lead", "value_mg_kg": 10},
        {"item": "unobtainium", "value_mg_kg": 10},
        {"item": "kryptonite", "value_mg_kg": 10},
        {"item": "Arsenic", "value_mg_kg": 10, "unit": "ppm"},
        {"item": "Arsenic", "value_mg_kg": -1},
        {"item": "Arsenic", "value_mg_kg": "ten"},
        {"item": "Arsenic", "value_mg_kg": True},
        {"item": "Arsenic", "value_mg_kg": float("nan")},
        {"item": "Arsenic"},
        {"value_mg_kg": 1},
        {"item": "Arsenic", "value_mg_kg": 1, "background_mg_kg": "high"},
        {"item": "Arsenic", "value_mg_kg": 1, "depth_m": -2},
        "Arsenic 1 mg/kg",
    ]
    problems = gb.sample_problems(samples)
    assert [(p["index"], p["field"]) for p in problems] == [
        (1, "item"),
        (2, "item"),
        (3, "unit"),
        (4, "value_mg_kg"),
        (5, "value_mg_kg"),
        (6, "value_mg_kg"),
        (7, "value_mg_kg"),
        (8, "value_mg_kg"),
        (9, "item"),
        (10, "background_mg_kg"),
        (11, "depth_m"),
        (12, "item"),
    ]
    assert problems[0]["value"] == "unobtainium"
    assert all(p["reason"] for p in problems)
    with pytest.raises(ValueError, match="invalid samples"):
        gb.evaluate_construction(samples, "R")


def test_samples_that_are_not_a_list_are_one_problem() -> None:
    assert [p["field"] for p in gb.sample_problems({"item": "Lead"})] == ["samples"]  # type: ignore[arg-type]


def test_two_unknown_items_give_two_problems() -> None:
    problems = gb.sample_problems(
        [{"item": "foo", "value_mg_kg": 1}, {"item": "bar", "value_mg_kg": 1}]
    )
    assert [(p["index"], p["field"], p["value"]) for p in problems] == [
        (0, "item", "foo"),
        (1, "item", "bar"),
    ]


# --------------------------------------------------------------------------- R5 from the levels


@pytest.mark.parametrize(
    ("value", "worst", "outcome", "row"),
    [
        (400, "none", "negligible", "R5.3"),
        (400.01, "above_screening", "assessment_required", "R5.2"),
        (800, "above_screening", "assessment_required", "R5.2"),
        (800.01, "above_intervention", "control_or_remediation", "R5.1"),
    ],
)
def test_r5_turns_the_worst_level_into_its_outcome(
    engine: RulesEngine, value: float, worst: str, outcome: str, row: str
) -> None:
    """R5's outcome is its table's alone: features give the level, the table decides."""
    facts, context = {"planned_use": "R"}, {"samples": [{"item": "铅", "value_mg_kg": value}]}
    assert r5_inputs(facts, context)["worst"] == worst
    decision = engine.evaluate("R5", facts, context)
    assert (decision.inputs["worst"], decision.outcome, decision.row) == (worst, outcome, row)


def test_r5_inputs_follow_the_comparison() -> None:
    samples = [
        {"item": "铅", "value_mg_kg": 900},
        {"item": "砷", "value_mg_kg": 30, "background_mg_kg": 40},
    ]
    evaluation = gb.evaluate_construction(samples, "school")
    inputs = r5_inputs({"planned_use": "school"}, {"samples": samples})
    assert (inputs["planned_use"], inputs["land_class"], inputs["worst"]) == (
        "A33",
        1,
        evaluation["worst"],
    )
    assert inputs["exceedances"] == gb.by_item(evaluation["exceedances"])
    assert inputs["exempt"] == gb.by_item(evaluation["exempt"])


# --------------------------------------------------------------------------- by_item


def test_by_item_summarises_exceedances_per_item() -> None:
    samples = [
        {"item": "Lead", "value_mg_kg": 500, "depth_m": 0.5},
        {"item": "Benzene", "value_mg_kg": 2},
        {"item": "7439-92-1", "value_mg_kg": 900, "depth_m": 2.0},
        {"item": "铅", "value_mg_kg": 450, "depth_m": 4.0},
        {"item": "Lead", "value_mg_kg": 10},  # under screening: not an exceedance
    ]
    exceedances = gb.evaluate_construction(samples, "R")["exceedances"]
    before = copy.deepcopy(exceedances)
    assert gb.by_item(exceedances) == [
        {
            "item": "Lead",
            "item_zh": "铅",
            "cas": "7439-92-1",
            "screening_value": 400.0,
            "intervention_value": 800.0,
            "samples": 3,
            "max_mg_kg": 900.0,
            "level": "above_intervention",
        },
        {
            "item": "Benzene",
            "item_zh": "苯",
            "cas": "71-43-2",
            "screening_value": 1.0,
            "intervention_value": 10.0,
            "samples": 1,
            "max_mg_kg": 2.0,
            "level": "above_screening",
        },
    ]
    assert exceedances == before, "by_item must not change what it summarises"


def test_by_item_keeps_the_worst_level_whatever_the_order() -> None:
    high_first = [{"item": "Lead", "value_mg_kg": 900}, {"item": "Lead", "value_mg_kg": 500}]
    for samples in (high_first, high_first[::-1]):
        (lead,) = gb.by_item(gb.evaluate_construction(samples, "R")["exceedances"])
        assert (lead["level"], lead["max_mg_kg"], lead["samples"]) == (
            "above_intervention",
            900.0,
            2,
        )


def test_by_item_of_exempt_samples_and_of_nothing() -> None:
    samples = [
        {"item": "Arsenic", "value_mg_kg": 25, "background_mg_kg": 30},
        {"item": "砷", "value_mg_kg": 28, "background_mg_kg": 30},
    ]
    (arsenic,) = gb.by_item(gb.evaluate_construction(samples, "R")["exempt"])
    assert (arsenic["cas"], arsenic["samples"], arsenic["max_mg_kg"], arsenic["level"]) == (
        "7440-38-2",
        2,
        28.0,
        None,
    )
    assert gb.by_item([]) == []


def test_by_item_of_farmland_items_without_cas_keys_on_the_symbol() -> None:
    samples = [
        {"item": "六六六总量", "value_mg_kg": 0.2},
        {"item": "HCH_total", "value_mg_kg": 0.3},
        {"item": "滴滴涕总量", "value_mg_kg": 0.2},
        {"item": "Cd", "value_mg_kg": 2.5},
    ]
    summary = gb.by_item(gb.evaluate_farmland(samples, 6.0, "other")["exceedances"])
    assert [(s["item"], s["cas"], s["samples"], s["max_mg_kg"], s["level"]) for s in summary] == [
        ("HCH_total", None, 2, 0.3, "above_screening"),
        ("DDT_total", None, 1, 0.2, "above_screening"),
        ("Cd", "7440-43-9", 1, 2.5, "above_intervention"),
    ]


# --------------------------------------------------------------------------- GB 15618


def test_farmland_items() -> None:
    assert gb_tables.farmland_items() == [
        "Cd",
        "Hg",
        "As",
        "Pb",
        "Cr",
        "Cu",
        "Ni",
        "Zn",
        "HCH_total",
        "DDT_total",
        "BaP",
    ]
    assert gb.farmland_items() == gb_tables.farmland_items()


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("Cd", "Cd"),
        ("cd", "Cd"),
        ("镉", "Cd"),
        ("Cadmium", "Cd"),
        ("7440-43-9", "Cd"),
        ("Chromium", "Cr"),
        ("铬", "Cr"),
        ("Zinc", "Zn"),
        ("六六六总量", "HCH_total"),
        ("unobtainium", None),
        ("Total cadmium", None),  # a lab's synonym: item_names knows it, the table does not
    ],
)
def test_farmland_symbol_is_an_exact_table_lookup(name: str, symbol: str | None) -> None:
    assert gb_tables.farmland_symbol(name) == symbol


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("Cd", "Cd"),
        ("镉", "Cd"),
        ("Total cadmium", "Cd"),
        ("铬", "Cr"),
        ("Benzo[a]pyrene", "BaP"),
        ("六六六总量", "HCH_total"),
    ],
)
def test_find_farmland_item(name: str, symbol: str) -> None:
    assert gb.find_farmland_item(name) == symbol


@pytest.mark.parametrize("name", ["Chromium(VI)", "DDT", "Benzene", "unobtainium"])
def test_find_farmland_item_unknown(name: str) -> None:
    assert gb.find_farmland_item(name) is None


@pytest.mark.parametrize(
    ("ph", "band"),
    [
        (0, "ph<=5.5"),
        (5.5, "ph<=5.5"),
        (5.51, "5.5<ph<=6.5"),
        (6.5, "5.5<ph<=6.5"),
        (7.0, "6.5<ph<=7.5"),
        (7.5, "6.5<ph<=7.5"),
        (7.6, "ph>7.5"),
        (14, "ph>7.5"),
    ],
)
def test_ph_band(ph: float, band: str) -> None:
    assert gb.ph_band(ph) == band
    assert gb.evaluate_farmland([], ph, "other")["ph_band"] == band


@pytest.mark.parametrize("ph", [-0.1, 14.1, float("nan"), "7", None, True])
def test_bad_ph_raises(ph: object) -> None:
    with pytest.raises(ValueError, match="ph"):
        gb.evaluate_farmland([], ph, "paddy")  # type: ignore[arg-type]


@pytest.mark.parametrize("farmland_type", ["forest", "", None])
def test_bad_farmland_type_raises(farmland_type: object) -> None:
    with pytest.raises(ValueError, match="farmland_type"):
        gb.evaluate_farmland([], 6.0, farmland_type)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("alias", "land"), [("水田", "paddy"), ("果园", "orchard"), ("Paddy", "paddy")]
)
def test_farmland_type_aliases(alias: str, land: str) -> None:
    assert gb.evaluate_farmland([], 6.0, alias)["farmland_type"] == land


@pytest.mark.parametrize(
    ("item", "value", "ph", "land", "screening", "intervention", "worst", "outcome"),
    [
        # Cd: paddy vs other screening differ, intervention by pH only.
        ("Cd", 0.3, 5.0, "paddy", 0.3, 1.5, "none", "priority_protection"),
        ("Cd", 0.35, 6.0, "paddy", 0.4, 2.0, "none", "priority_protection"),
        ("Cd", 0.35, 6.0, "other", 0.3, 2.0, "above_screening", "safe_use"),
        ("Cd", 0.35, 6.0, "orchard", 0.3, 2.0, "above_screening", "safe_use"),  # -> other
        ("Cd", 2.0, 6.0, "paddy", 0.4, 2.0, "above_screening", "safe_use"),  # == intervention
        ("Cd", 2.01, 6.0, "paddy", 0.4, 2.0, "above_intervention", "strict_control"),
        ("Cd", 0.7, 8.0, "paddy", 0.8, 4.0, "none", "priority_protection"),
        ("镉", 0.7, 8.0, "other", 0.6, 4.0, "above_screening", "safe_use"),
        ("Hg", 1.0, 7.0, "paddy", 0.6, 4.0, "above_screening", "safe_use"),
        ("Hg", 1.0, 7.0, "other", 2.4, 4.0, "none", "priority_protection"),
        ("As", 101, 8.0, "other", 25, 100, "above_intervention", "strict_control"),
        ("Pb", 130, 7.0, "paddy", 140, 700, "none", "priority_protection"),
        ("Pb", 130, 7.0, "other", 120, 700, "above_screening", "safe_use"),
        ("Chromium", 1300.5, 9.0, "paddy", 350, 1300, "above_intervention", "strict_control"),
        # Cu: orchard has its own rows; paddy falls back to "other". No intervention.
        ("Cu", 120, 5.0, "orchard", 150, None, "none", "priority_protection"),
        ("Cu", 120, 5.0, "paddy", 50, None, "above_screening", "safe_use"),
        ("Cu", 99999, 5.0, "other", 50, None, "above_screening", "safe_use"),
        ("Ni", 10000, 7.0, "paddy", 100, None, "above_screening", "safe_use"),
        ("Zn", 250, 7.0, "orchard", 250, None, "none", "priority_protection"),
        ("BaP", 0.56, 4.0, "paddy", 0.55, None, "above_screening", "safe_use"),
    ],
)
def test_evaluate_farmland(
    engine: RulesEngine,
    item: str,
    value: float,
    ph: float,
    land: str,
    screening: float,
    intervention: float | None,
    worst: str,
    outcome: str,
) -> None:
    samples = [{"item": item, "value_mg_kg": value}]
    result = gb.evaluate_farmland(samples, ph, land)
    assert result["worst"] == worst
    if worst == "none":
        assert result["exceedances"] == []
    else:
        (entry,) = result["exceedances"]
        assert entry["screening_value"] == screening
        assert entry["intervention_value"] == intervention
        assert entry["level"] == worst
    json.dumps(result)
    context = {"samples": samples, "ph": ph, "farmland_type": land}
    assert r10_inputs({}, context)["worst"] == worst
    decision = engine.evaluate("R10", {"current_use": "farmland"}, context)
    assert (decision.inputs["worst"], decision.outcome) == (worst, outcome)
    assert decision.details["ph_band"] == result["ph_band"]


def test_farmland_worst_over_several_samples_and_units(engine: RulesEngine) -> None:
    samples = [
        {"item": "Cd", "value_mg_kg": 200, "unit": "ug/kg"},  # 0.2: fine
        {"item": "Cu", "value_mg_kg": 60, "depth_m": 0.2},  # > 50: safe use
        {"item": "As", "value_mg_kg": 0.201, "unit": "g/kg"},  # 201 > 200: strict
    ]
    result = gb.evaluate_farmland(samples, 5.0, "other")
    assert result["worst"] == "above_intervention"
    assert [(e["index"], e["item"], e["level"]) for e in result["exceedances"]] == [
        (1, "Cu", "above_screening"),
        (2, "As", "above_intervention"),
    ]
    context = {"samples": samples, "ph": 5.0, "farmland_type": "other"}
    assert engine.evaluate("R10", {}, context).outcome == "strict_control"


def test_farmland_sample_problems() -> None:
    samples = [
        {"item": "Cd", "value_mg_kg": 1},
        {"item": "Benzene", "value_mg_kg": 1},
        {"item": "Pb", "value_mg_kg": 1, "unit": "ppm"},
        {"item": "Hg", "value_mg_kg": -3},
    ]
    problems = gb.farmland_sample_problems(samples)
    assert [(p["index"], p["field"]) for p in problems] == [
        (1, "item"),
        (2, "unit"),
        (3, "value_mg_kg"),
    ]
    with pytest.raises(ValueError, match="invalid samples"):
        gb.evaluate_farmland(samples, 6.0, "paddy")


def test_preload_indexes_both_tables() -> None:
    gb.preload()
    assert gb.find_item("Lead") is not None and gb.find_farmland_item("Zn") == "Zn"
