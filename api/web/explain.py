"""The rules in the page's language: a table's statement (zh/en in every table) and a
decision's explanation.

A decision records its explanation in English (the history keeps it as made). A Chinese
page renders the row's `because_zh` at display time from the decision's record: its
`inputs`, and its `details` mapped back to the values the row's placeholders name
(`party_name: $polluter_name` gives `polluter_name`). Enum values are shown in words
(`recovered` → 已收回), land-use codes by name, sample items by their GB 36600 name. A
decision known only by its brief (the workflow state keeps no inputs) whose record is
not in the registry yet keeps its English. Other recorded sentences (list reasons, the
law-over-plan notes) are looked up in the message catalog by their English text.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from api.web import i18n
from rules import gb_standards
from rules.engine import Row, RulesEngine, Table

CHOICES = frozenset({"right_status", "polluter_status", "industry", "recommendation"})


class Explained(Protocol):
    """A decision as the registry, the dry-run or the workflow state has it."""

    @property
    def rule(self) -> str: ...
    @property
    def row(self) -> str: ...
    @property
    def explanation(self) -> str: ...
    @property
    def details(self) -> dict[str, Any]: ...


def statement(rules: RulesEngine, rule: str) -> str:
    table = rules.tables.get(rule)
    if table is None:
        return ""
    return table.statement.get(i18n.current()) or table.statement.get("zh", "")


def _values(table: Table, row: Row, inputs: Mapping[str, Any], details: Mapping[str, Any]) -> dict:
    """What the rule saw, as far as the record keeps it: a value the decision reports in
    `details` is not repeated in its inputs (rules/engine.py `evaluate`)."""
    values = dict(inputs)
    for key, declared in {**table.details, **row.details}.items():
        if isinstance(declared, str) and declared.startswith("$") and key in details:
            values.setdefault(declared[1:], details[key])
    return values


def _item(name: str) -> str:
    found = gb_standards.find_item(name.strip())
    return str(found["item_zh"]) if found else name.strip()


def _shown(field: str, value: Any) -> str:
    """A placeholder's value in Chinese words."""
    if isinstance(value, list):
        return "、".join(_shown(field, v) for v in value)
    text = str(value)
    if field in CHOICES:
        return i18n.term("choice", text, field)
    if field == "planned_use":
        named = i18n.term("use", text)
        return f"{named}（{text}）" if named != text else text
    if field == "failing_items":
        return "、".join(_item(part) for part in text.split(","))
    return i18n.gettext(text) if text.startswith("(") else text


def explanation(rules: RulesEngine, decision: Explained) -> str:
    """The decision's explanation in the current locale."""
    english = decision.explanation
    table = rules.tables.get(decision.rule)
    row = table.row_by_id.get(decision.row) if table else None
    if i18n.current() != "zh" or table is None or row is None or not row.because_zh:
        return english
    inputs = getattr(decision, "inputs", None) or {}
    values = _values(table, row, inputs, decision.details or {})
    fields = {f for _, f, _, _ in string.Formatter().parse(row.because_zh) if f}
    if not fields <= values.keys():
        return english  # a brief whose record has not reached the registry yet
    return row.because_zh.format_map({f: _shown(f, values[f]) for f in fields})


class Sentences:
    """Recorded English sentences in the current locale: a decision's explanation (the
    investigation conclusion is R5's, a listing reason R11's) by the decision it came
    from; a fixed sentence (`suspected-contaminated-parcel file`) by the catalog."""

    def __init__(self, rules: RulesEngine, decisions: Iterable[Explained]) -> None:
        self.rules = rules
        self.by_text = {d.explanation: d for d in decisions}  # the latest of equal ones

    def __call__(self, english: str | None) -> str | None:
        if not english:
            return english
        made = self.by_text.get(english)
        return explanation(self.rules, made) if made else i18n.gettext(english)
