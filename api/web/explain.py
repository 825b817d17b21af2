"""The rules in the page's language: a table's statement (zh/en in every table)."""

from __future__ import annotations

from api.web import i18n
from rules.engine import RulesEngine


def statement(rules: RulesEngine, rule: str) -> str:
    table = rules.tables.get(rule)
    if table is None:
        return ""
    return table.statement.get(i18n.current()) or table.statement.get("zh", "")
