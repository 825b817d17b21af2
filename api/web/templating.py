"""The workbench's Jinja2 environment: the templates, their filters and the helpers
they call (labels, choices and help of generated form fields, facts in words, sizes,
the assets' version), all in the request's locale (`i18n.using`)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

from api.web import forms, i18n
from landflow.facts import ParcelFacts
from landflow.procedure import Flow

STATIC = Path(__file__).resolve().parent / "static"


def _fid(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")


def _label(f: forms.FormField) -> str:
    return i18n.term("field", f.key, f.context or None)


def _choice(f: forms.FormField, value: str) -> str:
    if f.districts:
        return value
    if f.key == "kind":
        return i18n.document_kind(value)
    return i18n.term("choice", str(value), f.key)


def _help(f: forms.FormField) -> str:
    explained = i18n.term("help", f.key)
    if explained != f.key.replace("_", " "):
        return explained
    hints = {
        "lines": i18n.gettext("One per line."),
        "json": i18n.gettext("GeoJSON, pasted whole."),
        "datetime": i18n.gettext("Beijing time (UTC+8)."),
    }
    if f.kind in hints:
        return hints[f.kind]
    return f.description if i18n.current() == "en" else ""


ROW_PATH = re.compile(r"^(?P<rows>[^\[]+)\[(?P<index>\d+)\](?:\.(?P<column>.+))?$")


def _field_label(form: forms.Form, name: str) -> str:
    """The label of the input an error is about (a summary links to it)."""
    if name.startswith("upload."):
        return i18n.document_kind(name.split(".", 1)[1])
    if name == "documents":
        return i18n.gettext("Documents")
    found = ROW_PATH.match(name)
    if found:
        rows = form.find(found["rows"])
        if rows is not None:
            column = next((c for c in rows.children if c.key == found["column"]), None)
            label = f"{_label(rows)} {int(found['index']) + 1}"
            return f"{label} · {_label(column)}" if column else label
    f = form.find(name)
    return _label(f) if f else name


def _input_type(f: forms.FormField) -> str:
    return {
        "number": "number",
        "integer": "number",
        "date": "date",
        "datetime": "datetime-local",
    }.get(f.kind, "text")


def flow_label(flow: Flow) -> str:
    found = i18n.term("flow", f"{flow.source}.{flow.target}")
    return flow.label if found == f"{flow.source}.{flow.target}".replace("_", " ") else found


def _value(key: str, value: Any) -> str:
    """A fact as the page shows it: enums in words, parties by name and id."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return i18n.gettext("Yes") if value else i18n.gettext("No")
    if isinstance(value, Mapping):
        if key == "location":
            return f"{value.get('lat')}, {value.get('lon')}"
        if key == "boundary":
            return f"GeoJSON {value.get('type', '')}"
        parts = []
        for k, v in value.items():
            if v in (None, "", False):
                continue
            shown = i18n.term("choice", str(v), k) if k == "status" else _value(k, v)
            parts.append(f"{i18n.term('field', k, key)}: {shown}")
        return "；".join(parts)
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, str):
        return i18n.term("choice", value, key) if _choice_field(key) else value
    if isinstance(value, float | int):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"
    return str(value)


@cache
def _facts_choices() -> frozenset[str]:
    return frozenset(f.key for f in forms.fields_of(ParcelFacts) if f.kind == "select")


def _choice_field(key: str) -> bool:
    return key in _facts_choices() and key != "district"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@cache
def _asset_version() -> str:
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("api.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(
        fid=_fid,
        when=i18n.format_when,
        day=lambda v: i18n.format_when(v, with_time=False),
        iso=i18n.iso,
        size=_size,
        say=i18n.gettext,
    )
    env.globals.update(
        term=i18n.term,
        role=i18n.role,
        stage=i18n.stage,
        step=i18n.step,
        kind=i18n.document_kind,
        label=_label,
        field_label=_field_label,
        choice=_choice,
        help=_help,
        input_type=_input_type,
        fact=_value,
        row_count=forms.row_count,
        new_key=lambda: uuid.uuid4().hex,
        asset_version=_asset_version,
    )
    return env
