"""Chinese and English for the workbench: Babel catalogs read from the `.po` files at
start (no compiled `.mo` in git), the locale chosen per request, dates in Beijing time.

Interface text is looked up by its English msgid (`_("Sign in")`). Domain words are
looked up by kind and id (`term("stage", "filing")` reads msgid `stage:filing`); where a
Chinese catalog has no entry the vocabulary module's Chinese names are used, and a new
id with no entry anywhere shows as itself, so a new step or field needs no page code.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from landflow.documents import DOCUMENT_KIND_ZH, DocumentKind
from landflow.procedure import PROCEDURE
from landflow.vocabulary import BEIJING_TIME, ROLE_ZH, STAGE_ZH, Role, Stage, Step

LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"
LANG_COOKIE = "lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
HTML_LANG = {"zh": "zh-CN", "en": "en"}

_locale: ContextVar[str] = ContextVar("landflow_web_locale", default=DEFAULT_LOCALE)


@cache
def translations(locale: str) -> Translations:
    """The catalog of `locale`, compiled in memory from its `.po` file once."""
    path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as source:
        catalog = read_po(source, locale=locale)
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


def preload() -> None:
    for locale in LOCALES:
        translations(locale)


def current() -> str:
    return _locale.get()


@contextmanager
def using(locale: str) -> Iterator[None]:
    """Render in `locale` (the templates' `_` reads it)."""
    token = _locale.set(locale if locale in LOCALES else DEFAULT_LOCALE)
    try:
        yield
    finally:
        _locale.reset(token)


def gettext(message: str) -> str:
    return translations(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(current()).ngettext(singular, plural, n)


def _known(msgid: str) -> str | None:
    text = translations(current()).gettext(msgid)
    return text if text != msgid else None


_ZH_NAMES: dict[str, dict[str, str]] = {
    "role": {r.value: zh for r, zh in ROLE_ZH.items()},
    "stage": {s.value: zh for s, zh in STAGE_ZH.items()},
    "step": {s.value: spec.title_zh for s, spec in PROCEDURE.items()},
    "kind": {k.value: zh for k, zh in DOCUMENT_KIND_ZH.items()},
}


def term(kind: str, ident: str, context: str | None = None) -> str:
    """A domain word in the current locale: `kind:context.ident`, then `kind:ident`, then
    the vocabulary's Chinese (in Chinese), then the id itself."""
    if context:
        found = _known(f"{kind}:{context}.{ident}")
        if found:
            return found
    found = _known(f"{kind}:{ident}")
    if found:
        return found
    if current() == "zh" and ident in _ZH_NAMES.get(kind, {}):
        return _ZH_NAMES[kind][ident]
    return ident.replace("_", " ")


def role(value: Role | str | None) -> str:
    return term("role", str(value)) if value else "—"


def stage(value: Stage | str | None) -> str:
    return term("stage", str(value)) if value else "—"


def step(value: Step | str | None) -> str:
    return term("step", str(value)) if value else "—"


def document_kind(value: DocumentKind | str) -> str:
    return term("kind", str(value))


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """`?lang=` (the toggle), then the `lang` cookie, then Accept-Language; Chinese when
    none of them names a locale the workbench has."""
    for explicit in (query, cookie):
        if explicit in LOCALES:
            return explicit
    best: tuple[float, str] | None = None
    for position, part in enumerate((accept_language or "").split(",")):
        name, *params = (p.strip() for p in part.split(";"))
        primary = name.lower().split("-")[0]
        if primary not in LOCALES:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if q > 0 and (best is None or q > best[0]):
            best = (q - position * 1e-6, primary)
    return best[1] if best else DEFAULT_LOCALE


def beijing(value: datetime | None) -> datetime | None:
    """An instant in Beijing time; a naive value is taken as UTC (the registry's)."""
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(BEIJING_TIME)


ZONE = "UTC+8"


def format_when(value: datetime | str | None, with_time: bool = True) -> str:
    """`2027-01-15 10:30 UTC+8` (Asia/Shanghai, which keeps no daylight saving)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    local = beijing(value)
    if local is None:
        return "—"
    if not with_time:
        return local.strftime("%Y-%m-%d")
    return f"{local.strftime('%Y-%m-%d %H:%M')} {ZONE}"


def iso(value: datetime | str | None) -> str:
    if isinstance(value, str):
        return value
    local = beijing(value)
    return local.isoformat(timespec="seconds") if local else ""
