"""The durable-rules host: load the decision tables, compile them, evaluate decisions.

durable_rules is used as a stateless classifier (see ENGINE-NOTES.md):
- one process-wide host, made under a lock (its lazy creation races across threads);
- each table compiles to a ruleset whose name carries the rule id, the version and a
  digest of the table, so a new version never collides with an old one (rulesets
  cannot be unloaded or registered twice);
- rows become rules with a priority equal to their position: an event is consumed by
  one rule, the highest-priority match, which gives the decision table a FIRST hit
  policy; the `default` row is a catch-all rule with the lowest priority, so "nothing
  matches" is a defined outcome and never a MessageNotHandledException (see DEFAULT_MARK);
- a fresh session id per decision, deleted afterwards; calls into the C engine are
  serialised by a lock, so concurrent activities cannot see each other's state.
Its timers are never used: deadlines are Temporal timers.

No Temporal and no database here: activities wrap this and record the result.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import durable_rules_engine  # type: ignore[import-not-found]  # the engine's C module
import yaml
from durable import engine as durable_engine

from landflow.decisions import Decision
from rules.features import RULE_INPUTS

TABLES_DIR = Path(__file__).resolve().parent / "tables"

_host_lock = threading.Lock()
_host: durable_engine.Host | None = None
_registered: set[str] = set()
_sids = itertools.count(1)  # session ids: unique within the process, cheaper than uuid4
# Every event carries this key, and each table's default row compiles to a rule on it
# with the lowest priority, so every event matches some rule. durable_rules 2.0.28
# corrupts its heap (segfault, "double free") when `delete_state` follows an event that
# matched nothing (MessageNotHandledException); with a catch-all that never happens, and
# each decision keeps its own session, deleted afterwards.
DEFAULT_MARK = "decision_table"
JSON_SCALARS = (str, int, float, bool, type(None))
# A misspelt key (`detials:`) would silently drop what it says: refuse it.
TABLE_KEYS = frozenset(
    {
        "rule",
        "version",
        "name",
        "hit_policy",
        "statement",
        "citation",
        "inputs",
        "outcomes",
        "rows",
        "default",
        "details",
    }
)
ROW_KEYS = frozenset(
    {"id", "when", "outcome", "citation", "because", "because_zh", "details", "law_over_plan"}
)


class RulesFileError(ValueError):
    """A decision table that cannot be used; the message names file, rule and problem."""


@dataclass(frozen=True)
class Row:
    id: str
    when: dict[str, Any]
    outcome: str
    citation: str
    because: str
    details: dict[str, Any] = field(default_factory=dict)
    law_over_plan: str | None = None  # where the 2019 law wins over the 2016 plan, and why
    # `because` in Chinese, with the same placeholders: pages render it from a decision's
    # record (the history keeps the English explanation the decision was made with).
    because_zh: str = ""


@dataclass(frozen=True)
class Table:
    rule: str
    version: int
    name: str
    statement: dict[str, str]
    citation: str
    inputs: dict[str, list[Any]]
    outcomes: list[str]
    rows: tuple[Row, ...]
    default: Row
    details: dict[str, Any]
    digest: str
    path: Path

    @cached_property
    def row_by_id(self) -> dict[str, Row]:
        rows = (*self.rows, self.default)
        return {r.id: r for r in rows} | {_rule_name(r.id): r for r in rows}

    @property
    def ruleset_name(self) -> str:
        return f"{self.rule}_v{self.version}_{self.digest}"

    def catalogue_entry(self) -> dict[str, Any]:
        return {
            "id": self.rule,
            "name": self.name,
            "version": self.version,
            "statement": self.statement,
            "citation": self.citation,
            "inputs": self.inputs,
            "outcomes": self.outcomes,
            "hit_policy": "first",
            "rows": [
                {
                    "id": r.id,
                    "when": r.when,
                    "outcome": r.outcome,
                    "citation": r.citation,
                    "because": r.because,
                    "law_over_plan": r.law_over_plan,
                }
                for r in (*self.rows, self.default)
            ],
            "ruleset": self.ruleset_name,
        }


def _row(
    path: Path,
    rule: str,
    raw: Any,
    inputs: dict[str, list[Any]],
    outcomes: list[str],
    default: bool = False,
) -> Row:
    where = f"{path.name}: {rule}"
    if not isinstance(raw, dict):
        raise RulesFileError(f"{where}: a row must be a mapping, got {raw!r}")
    unknown = sorted(set(raw) - ROW_KEYS)
    if unknown:
        raise RulesFileError(
            f"{where}: row {raw.get('id')!r} has unknown keys {unknown}; known {sorted(ROW_KEYS)}"
        )
    row_id = raw.get("id")
    if not isinstance(row_id, str) or not row_id.startswith(f"{rule}."):
        raise RulesFileError(f"{where}: row id {row_id!r} must start with '{rule}.'")
    where = f"{path.name}: {row_id}"
    for key in ("outcome", "citation", "because"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise RulesFileError(f"{where}: '{key}' is missing or empty")
    if raw["outcome"] not in outcomes:
        raise RulesFileError(f"{where}: outcome {raw['outcome']!r} is not one of {outcomes}")
    when = raw.get("when", {})
    if default and when:
        raise RulesFileError(f"{where}: the default row takes no 'when'")
    if not default and (not isinstance(when, dict) or not when):
        raise RulesFileError(f"{where}: 'when' must be a non-empty mapping")
    for name, expected in when.items():
        if name not in inputs:
            raise RulesFileError(f"{where}: 'when' reads {name!r}, which is not a declared input")
        values = expected if isinstance(expected, list) else [expected]
        bad = [v for v in values if v not in inputs[name]]
        if bad:
            raise RulesFileError(f"{where}: {name} cannot be {bad}; allowed {inputs[name]}")
    details = raw.get("details", {})
    if not isinstance(details, dict):
        raise RulesFileError(f"{where}: 'details' must be a mapping")
    note = raw.get("law_over_plan")
    if note is not None and (not isinstance(note, str) or not note):
        raise RulesFileError(f"{where}: 'law_over_plan' must be a sentence")
    zh = raw.get("because_zh", "")
    if not isinstance(zh, str):
        raise RulesFileError(f"{where}: 'because_zh' must be a sentence")
    return Row(row_id, when, raw["outcome"], raw["citation"], raw["because"], details, note, zh)


def load_table(path: Path) -> Table:
    try:
        text = path.read_text(encoding="utf-8")
        raw = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise RulesFileError(f"{path.name}: cannot read: {exc}") from exc
    if not isinstance(raw, dict):
        raise RulesFileError(f"{path.name}: expected a mapping at the top")
    rule = raw.get("rule")
    if rule not in RULE_INPUTS:
        raise RulesFileError(f"{path.name}: unknown rule id {rule!r}; known {sorted(RULE_INPUTS)}")
    for key in ("version", "name", "statement", "citation", "inputs", "outcomes", "default"):
        if key not in raw:
            raise RulesFileError(f"{path.name}: {rule}: '{key}' is missing")
    unknown = sorted(set(raw) - TABLE_KEYS)
    if unknown:
        raise RulesFileError(
            f"{path.name}: {rule}: unknown keys {unknown}; known {sorted(TABLE_KEYS)}"
        )
    if not isinstance(raw["version"], int) or raw["version"] < 1:
        raise RulesFileError(f"{path.name}: {rule}: version must be a positive integer")
    if raw.get("hit_policy", "first") != "first":
        # Rows compile to priorities and one event is consumed by one rule: FIRST only.
        raise RulesFileError(f"{path.name}: {rule}: hit_policy must be 'first'")
    statement = raw["statement"]
    if not isinstance(statement, dict) or not statement.get("zh") or not statement.get("en"):
        raise RulesFileError(f"{path.name}: {rule}: statement needs 'zh' and 'en'")
    inputs = raw["inputs"]
    if not isinstance(inputs, dict) or not all(isinstance(v, list) for v in inputs.values()):
        raise RulesFileError(f"{path.name}: {rule}: inputs must map each name to its values")
    reserved = {"sid", DEFAULT_MARK} & set(inputs)
    if reserved:
        raise RulesFileError(f"{path.name}: {rule}: input names {sorted(reserved)} are reserved")
    outcomes = raw["outcomes"]
    rows = tuple(_row(path, rule, r, inputs, outcomes) for r in raw.get("rows") or [])
    default = _row(path, rule, raw["default"], inputs, outcomes, default=True)
    ids = [r.id for r in (*rows, default)]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise RulesFileError(f"{path.name}: {', '.join(duplicates)}: duplicate row id")
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    return Table(
        rule,
        raw["version"],
        raw["name"],
        statement,
        raw["citation"],
        inputs,
        outcomes,
        rows,
        default,
        raw.get("details") or {},
        digest,
        path,
    )


def load_tables(directory: Path = TABLES_DIR) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    for path in sorted(directory.glob("*.yaml")):
        table = load_table(path)
        if table.rule in tables:
            raise RulesFileError(
                f"{path.name}: {table.rule} is also declared in {tables[table.rule].path.name}"
            )
        tables[table.rule] = table
    missing = sorted(set(RULE_INPUTS) - set(tables), key=lambda r: int(r[1:]))
    if missing:
        raise RulesFileError(f"{directory}: no table for {', '.join(missing)}")
    return tables


def _condition(when: dict[str, Any]) -> dict[str, Any]:
    terms = []
    for name, expected in when.items():
        values = expected if isinstance(expected, list) else [expected]
        terms.append({"$or": [{name: v} for v in values]} if len(values) > 1 else {name: values[0]})
    return {"$and": terms}


def _rule_name(row_id: str) -> str:
    return row_id.replace(".", "_")


def _action(_closure: Any) -> None:
    """Every rule needs an action; `_fire` reads which rule fired and never runs it."""


def _compile(table: Table) -> dict[str, Any]:
    conditions = [_condition(row.when) for row in table.rows]
    conditions.append({DEFAULT_MARK: table.rule})  # the default row: matches every event
    return {
        _rule_name(row.id): {"all": [{"m": condition}], "pri": priority, "run": _action}
        for priority, (row, condition) in enumerate(
            zip((*table.rows, table.default), conditions, strict=True), start=1
        )
    }


class _StatelessHost(durable_engine.Host):
    """A host without its background dispatch threads.

    durable_rules' Host starts timers that call into every ruleset every 0.2 s, outside
    our lock; such a thread could take the action of a decision in flight (the decision
    would then fall to its default row). Every action here completes inside `post`, and
    timers are never used, so there is nothing for those threads to do.
    """

    def _run(self) -> None:
        pass


def _host_with(tables: dict[str, Table]) -> durable_engine.Host:
    global _host
    with _host_lock:
        if _host is None:
            _host = _StatelessHost()
        fresh = {
            t.ruleset_name: _compile(t)
            for t in tables.values()
            if t.ruleset_name not in _registered
        }
        if fresh:
            _host.register_rulesets(fresh)
            _registered.update(fresh)
        return _host


class _Blanks(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def _json_ready(inputs: dict[str, Any]) -> dict[str, Any]:
    """A detached JSON-ready copy; scalars only (the common case) need no JSON round trip."""
    if all(isinstance(v, JSON_SCALARS) for v in inputs.values()):
        return dict(inputs)
    return json.loads(json.dumps(inputs, ensure_ascii=False, default=str))


def _resolve(details: dict[str, Any], inputs: dict[str, Any]) -> dict[str, Any]:
    return {
        k: inputs.get(v[1:]) if isinstance(v, str) and v.startswith("$") else v
        for k, v in details.items()
    }


def _fire(handle: int, event: str, sid: str) -> str | None:
    """The rule an event fires, straight through the engine's C interface.

    The Host's Python layer around the same calls (a Closure, the state and the message
    decoded from JSON and the state encoded back, our action callback) was most of a
    decision's time (bench/PROFILE.md); the rule's name is all a classifier needs, and
    it is the name of the action the engine starts. Rule names are row ids with "_" for
    ".": `row_by_id` is keyed by both."""
    code, state = durable_rules_engine.assert_event(handle, event)
    if code != 0:  # cannot happen: the default rule matches every event (DEFAULT_MARK)
        return None
    started = durable_rules_engine.start_action_for_state(handle, state)
    if not started:
        return None
    fired = next(iter(json.loads(started[1])))
    durable_rules_engine.complete_and_start_action(handle, state)
    durable_rules_engine.delete_state(handle, sid)
    return fired


class RulesEngine:
    """Evaluates R1-R10 over parcel facts; safe to share between threads."""

    def __init__(self, directory: Path | None = None) -> None:
        self.tables = load_tables(directory or TABLES_DIR)
        self._host = _host_with(self.tables)
        self._handles = {
            t.ruleset_name: self._host.get_ruleset(t.ruleset_name)._handle
            for t in self.tables.values()
        }

    def catalogue(self) -> list[dict[str, Any]]:
        return [
            t.catalogue_entry() for t in sorted(self.tables.values(), key=lambda t: int(t.rule[1:]))
        ]

    def _match(self, table: Table, inputs: dict[str, Any]) -> Row:
        message = {}
        for name, allowed in table.inputs.items():
            value = inputs.get(name)
            if value not in allowed:
                raise ValueError(f"{table.rule}: input {name}={value!r} is not one of {allowed}")
            message[name] = value
        handle = self._handles[table.ruleset_name]
        with _host_lock:
            sid = str(next(_sids))
            event = json.dumps(
                {"sid": sid, DEFAULT_MARK: table.rule, **message}, ensure_ascii=False
            )
            fired = _fire(handle, event, sid)
        return table.row_by_id.get(fired or "", table.default)

    def evaluate(
        self,
        rule: str,
        facts: dict[str, Any],
        context: dict[str, Any] | None = None,
        *,
        decision_id: str | None = None,
        now: datetime | None = None,
    ) -> Decision:
        table = self.tables[rule]
        inputs = RULE_INPUTS[rule](facts, context or {})
        row = self._match(table, inputs)
        declared = {**table.details, **row.details}
        details = _resolve(declared, inputs)
        # A value the decision reports in `details` is not repeated in its inputs.
        moved = {v[1:] for v in declared.values() if isinstance(v, str) and v.startswith("$")}
        recorded = {k: v for k, v in inputs.items() if k not in moved or k in table.inputs}
        return Decision(
            id=decision_id or f"{rule}-{random.getrandbits(48):012x}",
            rule=rule,
            version=table.version,
            row=row.id,
            outcome=row.outcome,
            citation=row.citation,
            explanation=row.because.format_map(_Blanks(inputs)),
            inputs=_json_ready(recorded),
            details=details,
            law_over_plan=row.law_over_plan,
            evaluated_at=now or datetime.now(UTC),
        )
