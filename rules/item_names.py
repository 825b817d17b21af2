"""Recognise GB 36600 / GB 15618 pollutant names the way labs write them.

Lab reports name one pollutant many ways: 苯并(a)芘, 苯并［a］芘, BaP, 50-32-8. Every name
is reduced to a key by :func:`normalize` (NFKC full-width -> half-width, every bracket kind
to ``()``, every dash kind and ``~`` to ``-``, primes to ``'``, all whitespace dropped,
casefold) and looked up among the table's CAS numbers, Chinese and English names and
:data:`SYNONYMS`. Nothing else is stripped: ``铅 mg/kg`` is not 铅, since a unit inside the
item name means the lab's columns are mixed up.

Total chromium (铬, 总铬, Cr) is deliberately not GB 36600 铬（六价）: judging a total-Cr
result against the Cr(VI) values would be wrong. It matches GB 15618 ``Cr`` only.

Stdlib only; the indexes are built once from :mod:`rules.gb_tables` and cached.
"""

from __future__ import annotations

import difflib
import unicodedata
from functools import cache, lru_cache
from typing import Any

from rules import gb_tables as gb

#: Extra names labs use, keyed by the item_zh of the GB 36600 table (CAS numbers, the
#: table's Chinese and English names and bracket/dash/case variants need no entry).
#: A chemist may extend this; a name that would match two items fails at first use.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "砷": ("As", "总砷", "Total arsenic"),
    "镉": ("Cd", "总镉", "Total cadmium"),
    "铬（六价）": (
        "六价铬",
        "Cr(VI)",
        "Cr VI",
        "Cr6+",
        "Cr+6",
        "Chromium VI",
        "Hexavalent chromium",
    ),
    "铜": ("Cu", "总铜", "Total copper"),
    "铅": ("Pb", "总铅", "Total lead"),
    "汞": ("Hg", "总汞", "Total mercury"),
    "镍": ("Ni", "总镍", "Total nickel"),
    "锑": ("Sb", "总锑", "Total antimony"),
    "铍": ("Be", "总铍", "Total beryllium"),
    "钴": ("Co", "总钴", "Total cobalt"),
    "钒": ("V", "总钒", "Total vanadium"),
    "甲基汞": ("MeHg",),
    "氰化物": ("总氰化物", "Total cyanide"),
    "四氯化碳": ("Tetrachloromethane",),
    "氯仿": ("三氯甲烷", "Trichloromethane"),
    "氯甲烷": ("一氯甲烷", "Methyl chloride"),
    "1,1-二氯乙烯": ("1,1-Dichloroethylene",),
    "顺-1,2-二氯乙烯": ("顺式-1,2-二氯乙烯", "cis-1,2-Dichloroethylene"),
    "反-1,2-二氯乙烯": ("反式-1,2-二氯乙烯", "trans-1,2-Dichloroethylene"),
    "二氯甲烷": ("Methylene chloride",),
    "四氯乙烯": ("Tetrachloroethylene", "PCE"),
    "三氯乙烯": ("Trichloroethylene", "TCE"),
    "氯乙烯": ("Chloroethene",),
    "氯苯": ("一氯苯",),
    "1,2-二氯苯": ("邻二氯苯",),
    "1,4-二氯苯": ("对二氯苯",),
    "间二甲苯+对二甲苯": (
        "间,对-二甲苯",
        "间/对-二甲苯",
        "间对二甲苯",
        "m,p-Xylene",
        "m/p-Xylene",
        "m+p-Xylene",
    ),
    "2-氯酚": ("2-氯苯酚", "邻氯苯酚"),
    "苯并[a]蒽": ("Benzo[a]anthracene",),
    "苯并[a]芘": ("苯并芘", "3,4-苯并芘", "BaP", "B[a]P"),
    "䓛": ("屈",),  # 䓛 is a rare CJK Ext-A character; many reports print 屈 instead
    "二苯并[a,h]蒽": ("Dibenzo[a,h]anthracene",),
    "一溴二氯甲烷": ("溴二氯甲烷",),
    "溴仿": ("三溴甲烷", "Tribromomethane"),
    "二溴氯甲烷": ("一氯二溴甲烷", "氯二溴甲烷", "Chlorodibromomethane"),
    "2,4-二氯酚": ("2,4-二氯苯酚",),
    "2,4,6-三氯酚": ("2,4,6-三氯苯酚",),
    "2,4-二硝基酚": ("2,4-二硝基苯酚",),
    "五氯酚": ("五氯苯酚", "PCP"),
    "邻苯二甲酸二(2-乙基己基)酯": ("DEHP",),
    "邻苯二甲酸丁基苄酯": ("BBP", "Benzyl butyl phthalate"),
    "邻苯二甲酸二正辛酯": ("DnOP",),
    "阿特拉津": ("莠去津",),
    "p,p'-滴滴滴": ("4,4'-DDD",),
    "p,p'-滴滴伊": ("p,p'-滴滴依", "4,4'-DDE"),
    "α-六六六": ("α-HCH",),
    "β-六六六": ("β-HCH",),
    "γ-六六六": ("林丹", "γ-HCH", "gamma-HCH", "Lindane"),
    "六氯苯": ("HCB",),
    "多氯联苯（总量）": ("多氯联苯", "多氯联苯总量", "总多氯联苯", "PCBs"),
    "3,3',4,4',5-五氯联苯（PCB 126）": ("PCB-126",),
    "3,3',4,4',5,5'-六氯联苯（PCB 169）": ("PCB-169",),
    "二噁英类（总毒性当量）": ("二噁英", "二噁英类", "二恶英", "二恶英类", "Dioxins"),
    "多溴联苯（总量）": ("多溴联苯", "PBBs"),
    "石油烃（C10-C40）": ("石油烃", "总石油烃", "TPH", "TPH(C10-C40)", "Petroleum hydrocarbons"),
}

#: GB 15618 names beyond the GB 36600 ones, by farmland symbol. Items GB 36600 also has
#: (Cd, Hg, As, Pb, Cu, Ni, BaP) take every GB 36600 name of that item as well.
FARMLAND_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Cr": ("铬", "总铬", "Chromium", "Total chromium", "7440-47-3"),
    "Zn": ("锌", "总锌", "Zinc", "Total zinc", "7440-66-6"),
    "HCH_total": ("六六六总量", "六六六（总量）", "总六六六", "HCH (total)"),
    "DDT_total": ("滴滴涕总量", "滴滴涕（总量）", "总滴滴涕", "DDT (total)"),
}

_FOLD = str.maketrans(
    {
        "[": "(",
        "]": ")",
        "{": "(",
        "}": ")",
        "〔": "(",
        "〕": ")",
        "【": "(",
        "】": ")",
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",  # figure dash
        "\u2013": "-",  # en dash
        "\u2014": "-",  # em dash
        "\u2212": "-",  # minus sign
        "~": "-",  # C10~C40
        "\u2032": "'",  # prime
        "\u2018": "'",
        "\u2019": "'",
        "\u200b": None,  # zero-width space (pasted from reports)
        "\ufeff": None,  # stray BOM
    }
)


def normalize(name: str) -> str:
    """The matching key of a name: width, brackets, dashes, primes, spaces and case folded."""
    text = unicodedata.normalize("NFKC", name).translate(_FOLD)
    return "".join(text.split()).casefold()


def display_name(item: dict[str, Any]) -> str:
    """``苯并[a]芘 (Benzo[a]pyrene, 50-32-8)``: how an item is named in messages."""
    details = ", ".join(part for part in (item["item_en"], item["cas"]) if part)
    return f"{item['item_zh']} ({details})"


def _names(item: dict[str, Any]) -> list[str]:
    cas = item["cas"].split(";") if item["cas"] else []
    return [item["item_zh"], item["item_en"], *cas, *SYNONYMS.get(item["item_zh"], ())]


@cache
def _index() -> dict[str, dict[str, Any]]:
    """Normalised name -> GB 36600 row; fails loudly on a synonym naming two items."""
    items = {item["item_zh"]: item for item in gb.construction_items()}
    unknown = set(SYNONYMS) - set(items)
    if unknown:
        raise RuntimeError(f"SYNONYMS keys not in GB 36600: {sorted(unknown)}")
    index: dict[str, dict[str, Any]] = {}
    for item in items.values():
        for name in _names(item):
            key = normalize(name)
            if index.setdefault(key, item) is not item:
                raise RuntimeError(f"ambiguous GB 36600 name {name!r}")
    return index


def match_item(name: str) -> dict[str, Any] | None:
    """The GB 36600 row (as :func:`gb_standards.find_item` returns it) named by ``name``."""
    if not isinstance(name, str):
        return None
    item = _index().get(normalize(name))
    return None if item is None else dict(item)


@lru_cache(maxsize=4096)
def _suggest(key: str, n: int) -> tuple[str, ...]:
    """Similar keys first, then known names inside ``key`` (``铅mg/kg`` -> 铅), longest first.

    Single ASCII letters (the symbol V) are too common inside words to count as contained.
    """
    index = _index()
    similar = difflib.get_close_matches(key, index, n=8 * n, cutoff=0.5)
    contained = sorted(
        (k for k in index if k in key and (len(k) > 1 or not k.isascii())), key=len, reverse=True
    )
    names: dict[str, None] = {}
    for close in similar + contained:
        names.setdefault(display_name(index[close]))
        if len(names) == n:
            break
    return tuple(names)


def suggest(name: str, n: int = 3) -> list[str]:
    """Up to ``n`` display names of the items closest to ``name``, for "unknown item" hints."""
    key = normalize(name) if isinstance(name, str) else ""
    return list(_suggest(key, n)) if key and n > 0 else []


@cache
def _farmland_index() -> dict[str, str]:
    """Normalised name -> GB 15618 symbol."""
    names: dict[str, list[str]] = {
        s: [s, *FARMLAND_SYNONYMS.get(s, ())] for s in gb.farmland_items()
    }
    for item in gb.construction_items():
        symbol = gb.farmland_symbol(item["cas"] or "")
        if symbol is not None:
            names[symbol] += _names(item)
    index: dict[str, str] = {}
    for symbol, symbol_names in names.items():
        for name in symbol_names:
            if index.setdefault(normalize(name), symbol) != symbol:
                raise RuntimeError(f"ambiguous GB 15618 name {name!r}")
    return index


def match_farmland_item(name: str) -> str | None:
    """The GB 15618 symbol (Cd, Hg, As, Pb, Cr, Cu, Ni, Zn, ...) named by ``name``."""
    if not isinstance(name, str):
        return None
    return _farmland_index().get(normalize(name))
