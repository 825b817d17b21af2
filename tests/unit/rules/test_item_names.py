"""rules.item_names: GB 36600 / GB 15618 item names as labs write them."""

from __future__ import annotations

import pytest

from rules import gb_standards as gb
from rules import item_names as names

BAP = "50-32-8"
CR6 = "18540-29-9"


def cas_of(name: str) -> str | None:
    item = names.match_item(name)
    return None if item is None else item["cas"]


def zh_of(name: str) -> str | None:
    item = names.match_item(name)
    return None if item is None else item["item_zh"]


@pytest.mark.parametrize(
    "name",
    [
        "苯并[a]芘",
        "苯并(a)芘",
        "苯并（a）芘",
        "苯并［a］芘",
        "苯并〔a〕芘",
        "苯并【a】芘",
        "苯并{a}芘",
    ],
)
def test_brackets_of_every_width_are_the_same(name: str) -> None:
    assert cas_of(name) == BAP


@pytest.mark.parametrize(
    "name",
    [
        "六价铬",
        "铬（六价）",
        "铬(六价)",
        "Chromium VI",
        "Chromium(VI)",
        "chromium (vi)",
        "Cr(VI)",
        "Cr(Ⅵ)",
        "Cr6+",
        "Cr⁶⁺",
        "hexavalent chromium",
        "HEXAVALENT CHROMIUM",
    ],
)
def test_hexavalent_chromium_synonyms(name: str) -> None:
    assert cas_of(name) == CR6


@pytest.mark.parametrize(
    ("name", "cas"),
    [
        ("苯并芘", BAP),
        ("BaP", BAP),
        ("B[a]P", BAP),
        ("b(a)p", BAP),
        ("Benzo(a)pyrene", BAP),
        ("三氯甲烷", "67-66-3"),
        ("氯仿", "67-66-3"),
        ("chloroform", "67-66-3"),
        ("As", "7440-38-2"),
        ("总砷", "7440-38-2"),
        ("Cd", "7440-43-9"),
        ("总镉", "7440-43-9"),
        ("Cu", "7440-50-8"),
        ("总铜", "7440-50-8"),
        ("Pb", "7439-92-1"),
        ("总铅", "7439-92-1"),
        ("Hg", "7439-97-6"),
        ("总汞", "7439-97-6"),
        ("Ni", "7440-02-0"),
        ("总镍", "7440-02-0"),
        ("Sb", "7440-36-0"),
        ("总锑", "7440-36-0"),
        ("Be", "7440-41-7"),
        ("总铍", "7440-41-7"),
        ("Co", "7440-48-4"),
        ("总钴", "7440-48-4"),
        ("V", "7440-62-2"),
        ("总钒", "7440-62-2"),
        ("50–32–8", BAP),  # en dashes in the CAS number
        ("屈", "218-01-9"),  # stand-in for the rare character 䓛
        ("m,p-Xylene", "108-38-3;106-42-3"),
        ("106-42-3", "108-38-3;106-42-3"),  # either CAS of a combined item
    ],
)
def test_synonyms_and_symbols(name: str, cas: str) -> None:
    assert cas_of(name) == cas


@pytest.mark.parametrize(
    ("name", "zh"),
    [
        ("总石油烃", "石油烃（C10-C40）"),
        ("石油烃", "石油烃（C10-C40）"),
        ("石油烃(C10–C40)", "石油烃（C10-C40）"),
        ("石油烃（C10−C40）", "石油烃（C10-C40）"),  # minus sign
        ("石油烃(C10~C40)", "石油烃（C10-C40）"),
        ("Petroleum hydrocarbons C10–C40", "石油烃（C10-C40）"),
        ("PCBs", "多氯联苯（总量）"),
        ("多氯联苯（总量）", "多氯联苯（总量）"),
        ("多氯联苯(总量)", "多氯联苯（总量）"),
        ("PCB-126", "3,3',4,4',5-五氯联苯（PCB 126）"),
        ("3,3′,4,4′,5-五氯联苯(PCB 126)", "3,3',4,4',5-五氯联苯（PCB 126）"),  # primes
        ("二恶英", "二噁英类（总毒性当量）"),
    ],
)
def test_items_without_cas_and_dash_variants(name: str, zh: str) -> None:
    assert zh_of(name) == zh


@pytest.mark.parametrize("item", gb.construction_items(), ids=lambda i: i["item_en"])
def test_every_table_name_matches_its_row(item: dict) -> None:
    cas = item["cas"].split(";") if item["cas"] else []
    for name in [item["item_zh"], item["item_en"], *cas]:
        assert names.match_item(name) == gb.find_item(item["item_zh"])
        spaced = f"  {' '.join(name)}\t"  # whitespace anywhere, case ignored
        assert zh_of(spaced.upper()) == item["item_zh"]


@pytest.mark.parametrize(("zh", "synonyms"), list(names.SYNONYMS.items()))
def test_every_synonym_matches_its_item(zh: str, synonyms: tuple[str, ...]) -> None:
    assert [zh_of(s) for s in synonyms] == [zh] * len(synonyms)


@pytest.mark.parametrize(
    "name", ["铅 mg/kg", "铅(mg/kg)", "Lead mg/kg", "苯并[a]芘 μg/kg", "", "   ", "C10-C40"]
)
def test_units_and_junk_are_not_stripped(name: str) -> None:
    assert names.match_item(name) is None


@pytest.mark.parametrize("name", ["Cr", "铬", "总铬", "Total chromium", "Chromium"])
def test_total_chromium_is_not_hexavalent(name: str) -> None:
    assert names.match_item(name) is None
    assert names.match_farmland_item(name) == "Cr"


def test_non_strings_do_not_match() -> None:
    assert names.match_item(None) is None  # type: ignore[arg-type]
    assert names.match_item(7440) is None  # type: ignore[arg-type]
    assert names.match_farmland_item(None) is None  # type: ignore[arg-type]
    assert names.suggest(None) == []  # type: ignore[arg-type]


def test_match_returns_a_copy() -> None:
    names.match_item("铅")["item_zh"] = "changed"  # type: ignore[index]
    assert zh_of("铅") == "铅"


def test_display_name() -> None:
    bap, tph = names.match_item("BaP"), names.match_item("TPH")
    assert bap is not None and tph is not None
    assert names.display_name(bap) == "苯并[a]芘 (Benzo[a]pyrene, 50-32-8)"
    assert names.display_name(tph) == "石油烃（C10-C40） (Petroleum hydrocarbons C10-C40)"


def test_suggest_close_names_for_a_typo() -> None:
    found = names.suggest("苯并a]芘")
    assert found[0] == "苯并[a]芘 (Benzo[a]pyrene, 50-32-8)"
    assert len(found) == 3
    assert len(set(found)) == 3


def test_suggest_finds_a_name_inside_a_longer_one() -> None:
    assert names.suggest("铅 mg/kg")[0] == "铅 (Lead, 7439-92-1)"
    assert names.suggest("Benzo[a]pyrene mg/kg")[0] == "苯并[a]芘 (Benzo[a]pyrene, 50-32-8)"


def test_suggest_respects_n_and_knows_when_nothing_is_close() -> None:
    assert len(names.suggest("苯并a]芘", n=1)) == 1
    assert names.suggest("苯并a]芘", n=0) == []
    assert names.suggest("zzzz") == []
    assert names.suggest("") == []


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        *[(s, s) for s in ("Cd", "Hg", "As", "Pb", "Cr", "Cu", "Ni", "Zn")],
        ("镉", "Cd"),
        ("总镉", "Cd"),
        ("7440-43-9", "Cd"),
        ("锌", "Zn"),
        ("总锌", "Zn"),
        ("苯并(a)芘", "BaP"),
        ("六六六（总量）", "HCH_total"),
        ("DDT (total)", "DDT_total"),
    ],
)
def test_farmland_items(name: str, symbol: str) -> None:
    assert names.match_farmland_item(name) == symbol


@pytest.mark.parametrize("name", ["Cr(VI)", "六价铬", "甲基汞", "滴滴涕", "unknown"])
def test_farmland_does_not_borrow_other_items(name: str) -> None:
    assert names.match_farmland_item(name) is None


def test_every_farmland_symbol_matches_itself() -> None:
    assert all(names.match_farmland_item(s) == s for s in gb.farmland_items())
