"""HTML forms generated from the action bodies' (and the parcel facts') JSON schemas, and
the way back: a posted form to the JSON body the API takes, and the API's 422 field
paths to the inputs they are about.

Kinds: enums → select; bool → checkbox; numbers; dates; long strings → textarea; lists
of strings → one per line; nested objects (Party, ExpertOpinion) → a fieldset with
dotted names (`opinion.date`); lists of objects (targets, results, samples) → rows named
`targets[0].item`; `documents` → upload slots of the kinds the policy requires. A new
field in a body model shows up here without page code; only its label wants a line in
the catalogs (it shows as its id until then).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel

from landflow.bodies import ACTION_BODIES
from landflow.documents import DocumentKind
from landflow.facts import ParcelFacts
from landflow.policy import Policy
from landflow.vocabulary import BEIJING_TIME, Action, districts

SCALARS = frozenset({"text", "textarea", "number", "integer", "date", "datetime", "select"})
LONG_TEXT = 500  # strings allowed longer than this get a textarea
# Fields whose values come from a table of the project rather than the schema.
DISTRICT_FIELDS = frozenset({"district", "origin_district", "destination_district"})
SUGGESTIONS: dict[str, tuple[str, ...]] = {
    # GB 50137 codes and the aliases DOMAIN.md lists for `planned_use`
    "planned_use": (
        "R", "A33", "A5", "A6", "G1", "B", "M", "W", "S", "U", "A", "G",
        "residential", "school", "medical", "elderly_care", "park", "playground",
        "commercial", "industrial", "logistics", "green_space", "unknown",
    ),
}  # fmt: skip
JSON_FIELDS = frozenset({"boundary"})  # GeoJSON: pasted whole
BEIJING_OFFSET = "+08:00"  # a datetime-local input has no zone: the user's is Beijing's


@dataclass(frozen=True)
class FormField:
    name: str  # the input's name: dotted path; a row column's is relative (`item`)
    key: str  # the last segment, for its label
    kind: str
    context: str = ""  # the parent path without row indices, for a specific label
    required: bool = False
    nullable: bool = False
    choices: tuple[str, ...] = ()
    districts: bool = False
    suggestions: tuple[str, ...] = ()
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    max_length: int | None = None
    description: str = ""
    children: tuple[FormField, ...] = ()

    def options(self) -> tuple[str, ...]:
        return districts() if self.districts else self.choices

    @property
    def step(self) -> str:
        return "1" if self.kind == "integer" else "any"

    def initial(self) -> str:
        """The default as the input shows it."""
        if self.default is None or self.kind in ("group", "rows"):
            return ""
        if self.kind == "checkbox":
            return "true" if self.default else ""
        if self.kind == "lines":
            return "\n".join(str(v) for v in self.default)
        return str(self.default) if self.default != "" else ""


@dataclass(frozen=True)
class DocumentSlot:
    """One file input of an action form: a kind the policy requires, or may be cited."""

    kind: DocumentKind
    required: bool

    @property
    def name(self) -> str:
        return f"upload.{self.kind.value}"


@dataclass(frozen=True)
class Form:
    fields: tuple[FormField, ...]
    slots: tuple[DocumentSlot, ...] = ()
    cites: bool = False  # the body has `documents`

    def find(self, name: str) -> FormField | None:
        return _find(self.fields, name)


def _find(fields: Iterable[FormField], name: str) -> FormField | None:
    for f in fields:
        if f.name == name:
            return f
        if f.kind == "group" and name.startswith(f.name + "."):
            return _find(f.children, name)
    return None


# --- from a JSON schema ---------------------------------------------------------------


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return {
            **defs[schema["$ref"].rsplit("/", 1)[-1]],
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    return dict(schema)


def _unwrap(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """`anyOf: [X, null]` → (X with the outer description and default, nullable)."""
    schema = _resolve(schema, defs)
    options = schema.get("anyOf")
    if not options:
        return schema, False
    real = [_resolve(o, defs) for o in options if o.get("type") != "null"]
    nullable = len(real) < len(options)
    inner = real[0] if len(real) == 1 else {}
    outer = {k: v for k, v in schema.items() if k != "anyOf"}
    return {**inner, **outer}, nullable


def _object(
    schema: Mapping[str, Any], defs: Mapping[str, Any], prefix: str, context: str
) -> tuple[FormField, ...]:
    required = set(schema.get("required", ()))
    return tuple(
        _field(f"{prefix}{key}", key, prop, defs, key in required, context)
        for key, prop in schema.get("properties", {}).items()
    )


def _field(
    name: str,
    key: str,
    prop: Mapping[str, Any],
    defs: Mapping[str, Any],
    required: bool,
    context: str,
) -> FormField:
    schema, nullable = _unwrap(prop, defs)
    base: dict[str, Any] = {
        "name": name,
        "key": key,
        "context": context,
        "required": required,
        "nullable": nullable,
        "default": schema.get("default"),
        "description": schema.get("description", ""),
    }
    kind = schema.get("type")
    here = f"{context}.{key}" if context else key
    if key == "documents" and kind == "array":
        return FormField(kind="documents", **base)
    if key in JSON_FIELDS:
        return FormField(kind="json", **base)
    if "enum" in schema:
        return FormField(kind="select", choices=tuple(schema["enum"]), **base)
    if key in DISTRICT_FIELDS and kind == "string":
        return FormField(kind="select", districts=True, **base)
    if kind == "object" and "properties" in schema:
        return FormField(kind="group", children=_object(schema, defs, f"{name}.", here), **base)
    if kind == "array":
        items = _resolve(schema.get("items", {}), defs)
        if items.get("type") == "object" and "properties" in items:
            columns = _object(items, defs, "", here)
            if all(c.kind in SCALARS | {"checkbox"} for c in columns):
                return FormField(kind="rows", children=columns, **base)
        if items.get("type") == "string":
            return FormField(kind="lines", **base)
        return FormField(kind="json", **base)
    if kind == "boolean":
        return FormField(kind="checkbox", **base)
    if kind in ("number", "integer"):
        return FormField(
            kind=kind,
            minimum=schema.get("minimum", schema.get("exclusiveMinimum")),
            maximum=schema.get("maximum", schema.get("exclusiveMaximum")),
            **base,
        )
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date":
            return FormField(kind="date", **base)
        if fmt == "date-time":
            return FormField(kind="datetime", **base)
        length = schema.get("maxLength")
        return FormField(
            kind="textarea" if length and length > LONG_TEXT else "text",
            max_length=length,
            suggestions=SUGGESTIONS.get(key, ()),
            **base,
        )
    return FormField(kind="json", **base)


@cache
def fields_of(model: type[BaseModel]) -> tuple[FormField, ...]:
    schema = model.model_json_schema()
    return _object(schema, schema.get("$defs", {}), "", "")


SAMPLE_LIKE = frozenset({"samples", "results"})  # may come from a lab_results spreadsheet


def action_form(action: Action, policy: Policy) -> Form:
    """The form of an action: its body's fields and its upload slots under `policy`."""
    fields = fields_of(ACTION_BODIES[action])
    cites = any(f.kind == "documents" for f in fields)
    slots: list[DocumentSlot] = []
    if cites:
        required = policy.required_documents(action)
        slots = [DocumentSlot(kind, True) for kind in required]
        if any(f.key in SAMPLE_LIKE for f in fields) and DocumentKind.lab_results not in required:
            slots.append(DocumentSlot(DocumentKind.lab_results, False))
        if DocumentKind.other not in required:
            slots.append(DocumentSlot(DocumentKind.other, False))
    return Form(fields=fields, slots=tuple(slots), cites=cites)


def facts_form() -> Form:
    return Form(fields=fields_of(ParcelFacts))


# --- a posted form → the JSON body ----------------------------------------------------

Values = Mapping[str, str]


def _row_indices(name: str, values: Values) -> list[int]:
    pattern = re.compile(re.escape(name) + r"\[(\d+)\]\.")
    return sorted({int(m.group(1)) for k in values if (m := pattern.match(k))})


def _blank(f: FormField, value: str | None) -> bool:
    return value is None or value.strip() == "" or value == f.initial()


def _row_blank(f: FormField, index: int, values: Values) -> bool:
    return all(_blank(c, values.get(f"{f.name}[{index}].{c.key}")) for c in f.children)


def compact(form: Form | tuple[FormField, ...], values: Values) -> dict[str, str]:
    """The values with blank rows dropped and rows renumbered 0, 1, ... as the body will
    list them, so an error about `targets[1]` is shown on the second row shown."""
    fields = form.fields if isinstance(form, Form) else form
    out = dict(values)
    for f in _walk(fields):
        if f.kind != "rows":
            continue
        kept = [i for i in _row_indices(f.name, values) if not _row_blank(f, i, values)]
        for key in [k for k in out if k.startswith(f.name + "[")]:
            del out[key]
        for new, old in enumerate(kept):
            for c in f.children:
                value = values.get(f"{f.name}[{old}].{c.key}")
                if value is not None:
                    out[f"{f.name}[{new}].{c.key}"] = value
    return out


def _walk(fields: Iterable[FormField]) -> Iterable[FormField]:
    for f in fields:
        yield f
        if f.kind == "group":
            yield from _walk(f.children)


def _number(raw: str, integer: bool) -> Any:
    try:
        number = float(raw)
    except ValueError:
        return raw  # the model's 422 names the field
    if not math.isfinite(number):
        return raw
    if integer and number.is_integer():
        return int(number)
    return number


def _scalar(f: FormField, raw: str | None) -> tuple[bool, Any]:
    """(present, value) of one input; blank inputs are left out (the default, or the
    model's "field required" at the same path as the API's)."""
    if f.kind == "checkbox":
        return True, raw in ("true", "on", "1")
    if raw is None or raw.strip() == "":
        return False, None
    text = raw.strip()
    if f.kind in ("number", "integer"):
        return True, _number(text, f.kind == "integer")
    if f.kind == "lines":
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return bool(lines), lines
    if f.kind == "json":
        try:
            return True, json.loads(text)
        except ValueError:
            return True, text
    if f.kind == "datetime":
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", text):
            text += ":00"
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?", text):
            text += BEIJING_OFFSET
        return True, text
    return True, raw if f.kind == "textarea" else text


def _filled(fields: Iterable[FormField], values: Values) -> bool:
    for f in fields:
        if f.kind == "group":
            if _filled(f.children, values):
                return True
        elif f.kind == "checkbox":
            if values.get(f.name) in ("true", "on", "1") and f.initial() != "true":
                return True
        elif not _blank(f, values.get(f.name)):
            return True
    return False


def _parse(fields: Iterable[FormField], values: Values, prefix: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {}
    for f in fields:
        name = prefix + f.name
        if f.kind == "documents":
            continue
        if f.kind == "group":
            if (f.nullable or not f.required) and not _filled(f.children, values):
                continue
            body[f.key] = _parse(f.children, values)
        elif f.kind == "rows":
            rows = [
                _parse(f.children, values, f"{name}[{i}].")
                for i in _row_indices(name, values)
                if not _row_blank(f, i, values)
            ]
            if rows:
                body[f.key] = rows
        else:
            present, value = _scalar(f, values.get(name))
            if present:
                body[f.key] = value
    return body


def body_from_form(form: Form | tuple[FormField, ...], values: Values) -> dict[str, Any]:
    """The JSON body of a posted form (its `documents` are added by the caller)."""
    fields = form.fields if isinstance(form, Form) else form
    return _parse(fields, compact(fields, values))


def values_from_body(form: Form | tuple[FormField, ...], body: Mapping[str, Any]) -> dict[str, str]:
    """The inputs a body fills in (a form shown again, and the round-trip tests)."""
    fields = form.fields if isinstance(form, Form) else form
    out: dict[str, str] = {}

    def put(f: FormField, name: str, value: Any) -> None:
        if value is None:
            return
        if f.kind == "group" and isinstance(value, Mapping):
            for c in f.children:
                put(c, c.name, value.get(c.key))
        elif f.kind == "rows" and isinstance(value, list):
            for i, row in enumerate(value):
                for c in f.children:
                    put(c, f"{name}[{i}].{c.key}", row.get(c.key))
        elif f.kind == "checkbox":
            if value:
                out[name] = "true"
        elif f.kind == "lines":
            out[name] = "\n".join(str(v) for v in value)
        elif f.kind == "json":
            out[name] = json.dumps(value, ensure_ascii=False)
        elif f.kind == "datetime":
            out[name] = _local_input(value)
        elif f.kind != "documents":
            out[name] = str(value)

    for f in fields:
        put(f, f.name, body.get(f.key))
    return out


def _local_input(value: Any) -> str:
    """An instant as a datetime-local input holds it: Beijing wall time, no zone."""
    try:
        when = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if when.tzinfo is not None:
        when = when.astimezone(BEIJING_TIME)
    return when.strftime("%Y-%m-%dT%H:%M")


def initial_values(form: Form | tuple[FormField, ...]) -> dict[str, str]:
    fields = form.fields if isinstance(form, Form) else form
    return {f.name: f.initial() for f in _walk(fields) if f.initial()}


def row_count(f: FormField, values: Values, extra: int = 1) -> int:
    """Rows to show: those filled in, and `extra` blank ones to type into."""
    indices = _row_indices(f.name, values)
    return (max(indices) + 1 if indices else 0) + extra


# --- the API's field paths → inputs ---------------------------------------------------


@dataclass
class Placed:
    """Errors by input name, and those about the body as a whole."""

    by_name: dict[str, list[str]] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.by_name or self.general)


def normalise_path(path: str) -> str:
    """`targets.0.item` (pydantic) and `targets[0].item` (the gate) name one input."""
    return re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", path.strip())


def input_names(form: Form, values: Values, extra_rows: int = 1) -> list[str]:
    names: list[str] = []

    def visit(fields: Iterable[FormField]) -> None:
        for f in fields:
            names.append(f.name)
            if f.kind == "group":
                visit(f.children)
            elif f.kind == "rows":
                for i in range(row_count(f, values, extra_rows)):
                    names.append(f"{f.name}[{i}]")
                    names.extend(f"{f.name}[{i}].{c.key}" for c in f.children)

    visit(form.fields)
    names.extend(slot.name for slot in form.slots)
    return names


def place(form: Form, values: Values, problems: Iterable[Mapping[str, Any]] | None) -> Placed:
    """Each `{field, reason}` beside the input its path names (or its nearest enclosing
    group or row); a path no input matches (`body`, a model-wide rule) above the form."""
    placed = Placed()
    known = input_names(form, values)
    by_length = sorted(known, key=len, reverse=True)
    for problem in problems or ():
        path = normalise_path(str(problem.get("field") or "body"))
        reason = str(problem.get("reason") or "")
        target = path if path in known else None
        if target is None:
            target = next(
                (n for n in by_length if path.startswith(n + ".") or path.startswith(n + "[")),
                None,
            )
        if target is None and path.startswith("lab_results"):
            target = f"upload.{DocumentKind.lab_results.value}"
            target = target if target in known else None
        if target is None:
            placed.general.append(reason if path == "body" else f"{path}: {reason}")
        else:
            placed.by_name.setdefault(target, []).append(reason)
    return placed
