"""The workbench and the public register: server-rendered pages over the services the API
uses (registry queries, the workflow's state, `act`, the document store), never the API
over HTTP. Chinese by default; forms work without JavaScript; htmx only refreshes the
inbox and previews the rules on the new-parcel form.

Authorisation is the API's: any signed-in caller reads a parcel (GET /parcels/{id}),
documents follow `may_read`, an action goes through `act` and the workflow's gate (the
page shows a form only to whom `next_actions` names, and a forged POST is refused by
the same gate before anything is stored), the trail is the auditor's.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any, cast
from urllib.parse import urlencode, urlsplit

import jinja2
from fastapi import APIRouter, FastAPI, Header, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.datastructures import FormData, UploadFile

from api import actions
from api.deps import PolicyDep, RulesDep, SessionDep, SettingsDep, StoreDep, get_temporal
from api.errors import ApiError
from api.routes import audit as audit_routes
from api.routes import documents as document_routes
from api.routes.parcels import act, admit_or_refuse, parcel_state, start_parcel
from api.schemas import DocumentOut, TaskOut
from api.web import FORM_TYPES, diagram, forms, i18n
from api.web import session as web_session
from audit import trail as audit_trail
from documents.store import DocumentStore
from landflow.facts import PARCEL_ID_PATTERN, ParcelFacts
from landflow.messages import Actor, NextAction, workflow_id
from landflow.policy import Policy
from landflow.procedure import PROCEDURE, Flow
from landflow.settings import Settings
from landflow.state import ParcelState
from landflow.vocabulary import Action, Role, Stage, districts
from registry import queries
from registry.tables import LISTS, DocumentRow, ParcelRow, aware
from rules.engine import RulesEngine
from rules.sequence import dry_run
from workflows.gate import matches, next_actions

router = APIRouter(prefix="/ui", include_in_schema=False)

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
PAGE_SIZE = 50
PARCEL_ID = re.compile(PARCEL_ID_PATTERN)
SHA256 = re.compile(r"^[0-9a-f]{64}$")
LIST_NAMES = LISTS  # suspected, contaminated (risk control and remediation), negative
NOTICE_KINDS = ("reminder", "escalation")
MAX_FORM_FILES = 8
MAX_FORM_FIELDS = 6000  # an investigation report's sample rows, six inputs each


# --- templates ------------------------------------------------------------------------


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


def _flow_label(flow: Flow) -> str:
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


def _security_headers(response: Response, settings: Settings) -> None:
    tiles = ""
    if settings.tile_url:
        parts = urlsplit(settings.tile_url)
        tiles = f" {parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        f"img-src 'self' data:{tiles}; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'"
    )
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"


def locale_of(request: Request) -> str:
    return i18n.negotiate(
        request.query_params.get("lang"),
        request.cookies.get(i18n.LANG_COOKIE),
        request.headers.get("accept-language"),
    )


def _toggle(request: Request, locale: str) -> str:
    """This page's address in the other language."""
    query = {k: v for k, v in request.query_params.multi_items() if k not in ("lang", "partial")}
    query["lang"] = "en" if locale == "zh" else "zh"
    return f"{request.url.path}?{urlencode(query)}"


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    who: web_session.Session | None = None,
    public: bool = False,
    csrf: str = "",
    **context: Any,
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    locale = locale_of(request)
    with i18n.using(locale):
        html = (
            environment()
            .get_template(template)
            .render(
                request=request,
                who=who,
                actor=who.actor if who else None,
                csrf=csrf or (who.csrf if who else ""),
                public=public,
                locale=locale,
                html_lang=i18n.HTML_LANG[locale],
                toggle_url=_toggle(request, locale),
                Role=Role,
                **context,
            )
        )
    response = HTMLResponse(html, status_code=status)
    _security_headers(response, settings)
    response.headers["Cache-Control"] = "no-store" if who else "no-cache"
    lang = request.query_params.get("lang")
    if lang in i18n.LOCALES:
        response.set_cookie(
            i18n.LANG_COOKIE, lang, max_age=365 * 86400, path="/ui", samesite="lax", httponly=True
        )
    return response


# --- errors and sign-in as pages ------------------------------------------------------


class SignInNeeded(Exception):
    pass


def signed_in(request: Request) -> web_session.Session:
    who = web_session.current(request)
    if who is None:
        raise SignInNeeded
    return who


def _error_title(status: int) -> str:
    return {
        401: i18n.gettext("Please sign in"),
        403: i18n.gettext("Not allowed"),
        404: i18n.gettext("Not found"),
        409: i18n.gettext("Not possible now"),
        413: i18n.gettext("Too large"),
        415: i18n.gettext("Unsupported file"),
        422: i18n.gettext("Please correct the form"),
        429: i18n.gettext("Busy: please retry shortly"),
        503: i18n.gettext("The workflow engine is unavailable"),
    }.get(status, i18n.gettext("Something went wrong"))


def error_page(request: Request, error: ApiError) -> HTMLResponse:
    who = web_session.current(request)
    with i18n.using(locale_of(request)):
        title = _error_title(error.status)
    response = render(
        request,
        "error.html",
        status=error.status,
        who=who,
        public=who is None,
        title=title,
        error=error,
    )
    for key, value in error.headers.items():
        response.headers.setdefault(key, value)
    return response


Route = Callable[..., Awaitable[Response]]


def page(route: Route) -> Route:
    """Answer a refusal as a page in the caller's language (the API answers JSON), and a
    missing or expired session with the sign-in form."""

    @functools.wraps(route)
    async def wrapper(*args: Any, **kwargs: Any) -> Response:
        request = kwargs.get("request") or next(a for a in args if isinstance(a, Request))
        try:
            return await route(*args, **kwargs)
        except SignInNeeded:
            if request.headers.get("hx-request"):  # a live part: the whole page signs in
                return Response(headers={"HX-Redirect": "/ui/login"})
            if request.method != "GET":
                reason = "sign in first: your session is missing or has expired"
                return error_page(request, ApiError(401, "Unauthenticated", reason))
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/ui/login?{urlencode({'next': target})}", status_code=303)
        except ApiError as error:
            return error_page(request, error)

    return wrapper


def _forbidden(detail: str) -> ApiError:
    return ApiError(403, "Forbidden", detail)


async def _form(request: Request) -> FormData:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in FORM_TYPES:
        raise ApiError(415, "UnsupportedMediaType", "send the form as a browser does")
    return await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)


def _csrf_checked(who: web_session.Session, form: FormData) -> None:
    presented = form.get(web_session.CSRF_FIELD)
    if not web_session.csrf_valid(who, presented if isinstance(presented, str) else None):
        raise ApiError(
            403, "CsrfRefused", "the form did not carry this session's csrf_token: reload the page"
        )


def _texts(form: FormData) -> dict[str, str]:
    """The text inputs of a form (the last one of a repeated name)."""
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/inbox"


# --- static assets --------------------------------------------------------------------

MEDIA = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """Assets served from the package (no CDN): htmx, the stylesheet, the small script."""
    path = STATIC / name
    if "/" in name or name.startswith(".") or not path.is_file():
        return Response(status_code=404)
    return FileResponse(
        path,
        media_type=MEDIA.get(path.suffix, "application/octet-stream"),
        headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
    )


# --- sign-in --------------------------------------------------------------------------


@router.get("")
async def home() -> Response:
    return RedirectResponse("/ui/inbox", status_code=303)


@router.get("/login")
@page
async def login_form(request: Request, token: str = "", next: str = "") -> Response:
    """The sign-in form; `?token=` (the links `make run` prints) only fills it in."""
    return _login_page(request, token[:500], next, None)


def _login_page(request: Request, token: str, target: str, problem: str | None) -> HTMLResponse:
    csrf = web_session.new_login_token()
    response = render(
        request,
        "login.html",
        status=401 if problem else 200,
        public=True,
        csrf=csrf,
        token=token,
        next=_safe_next(target) if target else "",
        problem=problem,
    )
    web_session.set_login_cookie(request, response, csrf)
    return response


@router.post("/login")
@page
async def login(request: Request) -> Response:
    form = await _form(request)
    texts = _texts(form)
    if not web_session.login_token_valid(request, texts.get(web_session.CSRF_FIELD)):
        raise ApiError(403, "CsrfRefused", "the sign-in form has expired: reload it")
    identity = web_session.identity_source(request).sign_in(texts.get("token", ""))
    if identity is None:
        with i18n.using(locale_of(request)):
            problem = i18n.gettext("Unknown or revoked token.")
        return _login_page(request, "", texts.get("next", ""), problem)
    response = RedirectResponse(_safe_next(texts.get("next")), status_code=303)
    web_session.start(request, response, identity)
    return response


@router.get("/logout")
@page
async def logout_form(request: Request) -> Response:
    who = web_session.current(request)
    if who is None:
        return RedirectResponse("/ui/login", status_code=303)
    return render(request, "logout.html", who=who)


@router.post("/logout")
@page
async def logout(request: Request) -> Response:
    who = signed_in(request)
    _csrf_checked(who, await _form(request))
    response = RedirectResponse("/ui/login", status_code=303)
    web_session.end(response)
    return response


@router.get("/go")
@page
async def go(request: Request, parcel_id: str = "") -> Response:
    """The header's "open a parcel" box (a GET form)."""
    signed_in(request)
    wanted = parcel_id.strip()
    if not PARCEL_ID.match(wanted) or len(wanted) > 64:
        raise ApiError(404, "NotFound", f"no parcel {wanted[:64]!r}")
    return RedirectResponse(f"/ui/parcels/{wanted}", status_code=303)


# --- 我的待办 -------------------------------------------------------------------------


def _flag(value: str | None) -> bool | None:
    return {"true": True, "false": False}.get(value or "")


@router.get("/inbox")
@page
async def inbox(
    request: Request,
    db: SessionDep,
    stage: str = "",
    district: str = "",
    overdue: str = "",
    cursor: str = "",
    partial: str = "",
) -> Response:
    """The caller's open steps, oldest deadline first, with the counts per stage."""
    who = signed_in(request)
    actor = who.actor
    scope: dict[str, Any] = {
        "role": actor.role.value,
        "district": actor.district,
        "party": actor.party,
    }
    chosen_stage = stage if stage in {s.value for s in Stage} else None
    chosen_district = district if district in districts() else None

    def fetch() -> tuple[Any, dict[str, int]]:
        where: dict[str, Any] = {
            **scope,
            "stage": chosen_stage,
            "in_district": chosen_district,
            "overdue": _flag(overdue),
            "limit": PAGE_SIZE,
        }
        by_stage = queries.tasks_by_stage(db, **scope)
        try:
            found = queries.tasks_for(db, **where, cursor=cursor or None, by_stage=by_stage)
        except queries.BadCursor:  # a stale link: its first page
            found = queries.tasks_for(db, **where, by_stage=by_stage)
        return found, by_stage

    # The registry is read off the event loop, which keeps serving other requests.
    found, by_stage = await asyncio.to_thread(fetch)
    now = datetime.now(UTC)
    tasks = [TaskOut.of(task, parcel, now) for task, parcel in found.items]
    filters = {"stage": chosen_stage or "", "district": chosen_district or "", "overdue": overdue}
    kept = {k: v for k, v in filters.items() if v}
    context: dict[str, Any] = {
        "tasks": tasks,
        "total": found.total,
        "by_stage": by_stage,
        "filters": filters,
        "query": urlencode(kept),
        "next_url": (
            f"/ui/inbox?{urlencode({**kept, 'cursor': found.next_cursor})}"
            if found.next_cursor
            else None
        ),
        "paged": bool(cursor),
        "stages": list(Stage),
        "districts": [actor.district] if actor.district else list(districts()),
    }
    template = "_inbox_table.html" if partial else "inbox.html"
    return render(request, template, who=who, **context)


# --- the parcel page ------------------------------------------------------------------


@dataclass
class FormState:
    """An action form shown again: what was typed, what was wrong, what was uploaded."""

    values: dict[str, str]
    placed: forms.Placed = field(default_factory=forms.Placed)
    checked: set[str] = field(default_factory=set)
    extra_rows: dict[str, int] = field(default_factory=dict)


def _mine(actor: Actor, offer: NextAction) -> bool:
    # A NextAction names role, district and party as an Assignee does.
    return matches(actor, cast(Any, offer))


def _statement(rules: RulesEngine, rule: str) -> str:
    table = rules.tables.get(rule)
    if table is None:
        return ""
    return table.statement.get(i18n.current()) or table.statement.get("zh", "")


async def _parcel(request: Request, settings: Settings, parcel_id: str) -> tuple[ParcelState, str]:
    if not PARCEL_ID.match(parcel_id) or len(parcel_id) > 64:
        raise ApiError(404, "NotFound", f"parcel {parcel_id[:64]} not found")
    client = await get_temporal(request)
    state, run_status = await parcel_state(client, settings, parcel_id)
    return state, run_status


def _parcel_page(
    request: Request,
    who: web_session.Session,
    state: ParcelState,
    run_status: str,
    *,
    db: Session,
    policy: Policy,
    rules: RulesEngine,
    settings: Settings,
    shown: dict[tuple[str, int], FormState] | None = None,
    status: int = 200,
    notice: str | None = None,
) -> HTMLResponse:
    actor = who.actor
    pid = state.parcel_id
    running = run_status == "running"
    offers = [o for o in next_actions(state) if _mine(actor, o)] if running else []
    row = queries.current_run(db, parcel_id=pid)
    readable = row is not None and document_routes.may_read(row, actor)
    rows = queries.documents_for(db, parcel_id=pid)
    documents = [DocumentOut.of(d) for d in rows]
    uploader = f"{actor.role.value}:{actor.subject}"  # as documents record who uploaded
    own = [DocumentOut.of(d) for d in rows if d.uploaded_by == uploader]
    blocking = state.blocking()
    now = datetime.now(UTC)
    with i18n.using(locale_of(request)):
        svg = diagram.render(
            diagram.Progress(
                visits=tuple(v.stage for v in state.stages),
                current=state.stage,
                step_title=i18n.step(blocking.step) if blocking else None,
            ),
            stage_label=i18n.stage,
            flow_label=_flow_label,
            title=i18n.gettext("The procedure, and where this parcel stands"),
        )
        statements = {d.rule: _statement(rules, d.rule) for d in state.decisions}
        outline = diagram.outline(
            state.facts.get("boundary"),
            state.facts.get("location"),
            tile_url=settings.tile_url,
            title=i18n.gettext("Parcel outline"),
        )
    action_forms = []
    for offer in offers:
        spec = forms.action_form(offer.action, policy)
        state_of = (shown or {}).get((offer.action.value, offer.visit)) or FormState(
            values=forms.initial_values(spec)
        )
        action_forms.append({"offer": offer, "form": spec, "state": state_of})
    notices = [n for n in queries.notices_for(db, run_id=state.run_id) if n.kind in NOTICE_KINDS]
    facts_order = [k for k in ParcelFacts.model_fields if k in state.facts]
    return render(
        request,
        "parcel.html",
        status=status,
        who=who,
        state=state,
        run_status=run_status,
        facts_order=facts_order,
        diagram=svg,
        outline=outline,
        statements=statements,
        action_forms=action_forms,
        documents=documents if readable else None,
        own_documents=own,
        blocking=blocking,
        days_left=(
            round((aware(blocking.deadline) - now).total_seconds() / 86_400, 1)
            if blocking
            else None
        ),
        notices=notices,
        procedure=PROCEDURE,
        ui_link=f"{settings.ui_url.rstrip('/')}/namespaces/{settings.namespace}/workflows/"
        f"{workflow_id(pid)}",
        notice=notice,
        done=request.query_params.get("done"),
    )


@router.get("/parcels/new")
@page
async def new_parcel_form(request: Request) -> Response:
    who = _agency(request)
    spec = forms.facts_form()
    return _new_page(request, who, forms.initial_values(spec), forms.Placed(), None)


def _agency(request: Request) -> web_session.Session:
    who = signed_in(request)
    if who.actor.role != Role.reserve_agency:
        raise ApiError(
            403, "WrongRole", f"registering a parcel is for reserve_agency, not {who.actor.role}"
        )
    return who


def _new_page(
    request: Request,
    who: web_session.Session,
    values: dict[str, str],
    placed: forms.Placed,
    preview: list[Any] | None,
    status: int = 200,
    template: str = "new_parcel.html",
) -> HTMLResponse:
    rules: RulesEngine = request.app.state.rules
    with i18n.using(locale_of(request)):
        statements = {d.rule: _statement(rules, d.rule) for d in preview or []}
    return render(
        request,
        template,
        status=status,
        who=who,
        form=forms.facts_form(),
        values=values,
        placed=placed,
        preview=preview,
        statements=statements,
    )


def _model_problems(exc: ValidationError) -> list[dict[str, Any]]:
    """Pydantic's errors at the paths the API reports them (`polluter.name`, `body`)."""
    return [
        {"field": ".".join(str(p) for p in err["loc"]) or "body", "reason": err["msg"]}
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


def _facts(values: Mapping[str, str]) -> tuple[ParcelFacts | None, list[dict[str, Any]]]:
    body = forms.body_from_form(forms.facts_form(), values)
    try:
        return ParcelFacts.model_validate(body), []
    except ValidationError as exc:
        return None, _model_problems(exc)


async def _preview(rules: RulesEngine, facts: ParcelFacts) -> tuple[list[Any], list[dict]]:
    try:
        made = await asyncio.to_thread(dry_run, rules, facts.submitted(), {})
    except ValueError as exc:
        return [], [{"field": "body", "reason": f"a rule cannot decide: {exc}"}]
    return made, []


@router.post("/parcels/new/preview")
@page
async def new_parcel_preview(request: Request, rules: RulesDep) -> Response:
    """The live part of the new-parcel form: what the rules would decide (the dry-run)."""
    who = _agency(request)
    form = await _form(request)
    _csrf_checked(who, form)
    values = forms.compact(forms.facts_form(), _texts(form))
    facts, problems = _facts(values)
    preview: list[Any] = []
    if facts is not None:
        preview, problems = await _preview(rules, facts)
    placed = forms.place(forms.facts_form(), values, problems)
    return _new_page(request, who, values, placed, preview, template="_preview.html")


@router.post("/parcels/new")
@page
async def new_parcel(request: Request, settings: SettingsDep, rules: RulesDep) -> Response:
    """Preview (`_preview`) or start (`_start`) the parcel the facts form describes."""
    who = _agency(request)
    form = await _form(request)
    _csrf_checked(who, form)
    spec = forms.facts_form()
    values = forms.compact(spec, _texts(form))
    facts, problems = _facts(values)
    if facts is None:
        return _new_page(request, who, values, forms.place(spec, values, problems), None, 422)
    preview, problems = await _preview(rules, facts)
    if problems or "_start" not in values:
        placed = forms.place(spec, values, problems)
        return _new_page(request, who, values, placed, preview, 422 if problems else 200)
    client = await get_temporal(request)
    try:
        await start_parcel(facts, who.actor, client, settings)
    except ApiError as error:
        if error.status not in (409, 422):
            raise
        placed = forms.place(
            spec, values, error.fields or [{"field": "body", "reason": error.message}]
        )
        return _new_page(request, who, values, placed, preview, error.status)
    return RedirectResponse(f"/ui/parcels/{facts.parcel_id}?done=started", status_code=303)


@router.get("/parcels/{parcel_id}")
@page
async def parcel(
    request: Request,
    parcel_id: str,
    db: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    rules: RulesDep,
) -> Response:
    """Facts, the procedure diagram, timeline, decisions, documents, deadline and
    reminders, and the forms of the actions the caller may take now."""
    who = signed_in(request)
    state, run_status = await _parcel(request, settings, parcel_id)
    return _parcel_page(
        request, who, state, run_status, db=db, policy=policy, rules=rules, settings=settings
    )


async def _citations(
    *,
    form: FormData,
    spec: forms.Form,
    state: ParcelState,
    caller: Actor,
    db: Session,
    store: DocumentStore,
    settings: Settings,
) -> tuple[list[dict[str, str]], set[str], list[dict[str, Any]], int]:
    """Upload the form's files (as the documents route does) and cite them with the
    documents the caller ticked; (citations, ticked ids, problems, status)."""
    cited: list[dict[str, str]] = []
    problems: list[dict[str, Any]] = []
    status = 422
    if spec.slots and not document_routes.may_upload(state, caller):
        raise _forbidden(f"{caller.role.value} neither acts nor has acted on this parcel")
    for slot in spec.slots:
        upload = form.get(slot.name)
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        try:
            row, _ = await document_routes.save_document(
                parcel_id=state.parcel_id,
                file=upload,
                kind=slot.kind,
                title=None,
                caller=caller,
                session=db,
                store=store,
                limit=settings.max_document_bytes,
            )
        except ApiError as error:
            status = error.status
            reasons = [f.get("reason", error.message) for f in error.fields or []] or [
                error.message
            ]
            problems += [{"field": slot.name, "reason": r} for r in reasons]
            continue
        cited.append({"document_id": row.document_id, "kind": row.kind})
    for value in form.getlist("cite"):
        if not isinstance(value, str):
            continue
        cited_row = queries.document(db, document_id=value)
        if cited_row is None or cited_row.parcel_id != state.parcel_id:
            problems.append({"field": "documents", "reason": "no such document on this parcel"})
            continue
        if all(c["document_id"] != cited_row.document_id for c in cited):
            cited.append({"document_id": cited_row.document_id, "kind": cited_row.kind})
    return cited, {c["document_id"] for c in cited}, problems, status


def _visit(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() and int(value) > 0 else None


@router.post("/parcels/{parcel_id}/actions/{action}")
@page
async def act_form(
    request: Request,
    parcel_id: str,
    action: str,
    db: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    policy: PolicyDep,
    rules: RulesDep,
) -> Response:
    """An action form: checked as the API checks the action (403 role, district, party;
    409 step; 422 body, each error beside its field), uploads stored only once the
    caller may act, then `act` with the form's Idempotency-Key (a double click applies
    once)."""
    who = signed_in(request)
    form = await _form(request)
    _csrf_checked(who, form)
    try:
        chosen = Action(action)
    except ValueError:
        raise ApiError(404, "NotFound", f"unknown action {action[:50]!r}") from None
    state, run_status = await _parcel(request, settings, parcel_id)
    texts = _texts(form)
    visit = _visit(texts.get("visit"))
    idempotency_key = (texts.get("idempotency_key") or "").strip()[:200] or None
    used = actions.idempotency_digest(who.actor, idempotency_key)
    if used in state.keys:  # a second click after the first was applied: its outcome
        return _applied(parcel_id, chosen, state.keys[used].seq)
    admit_or_refuse(state.model_copy(update={"status": run_status}), who.actor, chosen, visit)
    spec = forms.action_form(chosen, policy)
    values = forms.compact(spec, texts)
    key = (chosen.value, visit or 0)

    def again(
        placed: forms.Placed,
        checked: set[str],
        status: int,
        notice: str | None = None,
        **extra: Any,
    ) -> Response:
        shown = {key: FormState(values=values, placed=placed, checked=checked, **extra)}
        return _parcel_page(
            request,
            who,
            state,
            run_status,
            db=db,
            policy=policy,
            rules=rules,
            settings=settings,
            shown=shown,
            status=status,
            notice=notice,
        )

    adding = texts.get("_add")
    if adding:  # the no-JavaScript "add a row" button: show the form with one more row
        return again(forms.Placed(), set(), 200, extra_rows={adding: 2})
    cited, checked, problems, status = await _citations(
        form=form, spec=spec, state=state, caller=who.actor, db=db, store=store, settings=settings
    )
    if problems:
        return again(forms.place(spec, values, problems), checked, status)
    body = forms.body_from_form(spec, values)
    if spec.cites:
        body["documents"] = cited
    try:
        outcome = await act(
            parcel_id=parcel_id,
            action=chosen,
            raw=json.dumps(body, ensure_ascii=False).encode(),
            caller=who.actor,
            client=await get_temporal(request),
            settings=settings,
            session=db,
            store=store,
            policy=policy,
            ring=request.app.state.ring,
            idempotency_key=idempotency_key,
            visit=visit,
        )
    except ApiError as error:
        if error.status not in (409, 413, 422):
            raise
        state, run_status = await _parcel(request, settings, parcel_id)
        if used in state.keys:  # applied meanwhile (a concurrent click, a retried sample action)
            return _applied(parcel_id, chosen, state.keys[used].seq)
        if error.status == 409:  # the step moved on: the page as it is now, and why
            return again(forms.Placed(), checked, 409, notice=error.message)
        problems = error.fields or [{"field": "body", "reason": error.message}]
        return again(forms.place(spec, values, problems), checked, error.status)
    return _applied(parcel_id, chosen, outcome.seq)


def _applied(parcel_id: str, action: Action, seq: int) -> Response:
    """Post/redirect/get: the parcel page, saying what was done."""
    query = urlencode({"done": action.value, "seq": seq})
    return RedirectResponse(f"/ui/parcels/{parcel_id}?{query}", status_code=303)


@router.get("/parcels/{parcel_id}/documents/{doc_id}")
@page
async def parcel_document(
    request: Request,
    parcel_id: str,
    doc_id: str,
    db: SessionDep,
    store: StoreDep,
    range_: Annotated[str | None, Header(alias="range", max_length=100)] = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """A document's bytes for whoever may read the parcel's documents (as the API)."""
    who = signed_in(request)
    document_routes.readable_row(db, parcel_id, who.actor)
    return document_routes.serve_document(db, store, parcel_id, doc_id, range_, if_none_match)


@router.get("/parcels/{parcel_id}/trail")
@page
async def trail(request: Request, parcel_id: str) -> Response:
    """The auditor's printable decision trail, built from the history alone."""
    who = signed_in(request)
    if who.actor.role != Role.auditor:
        raise ApiError(403, "WrongRole", f"the trail is for auditor, not {who.actor.role.value}")
    history = await audit_routes.parcel_history(request, parcel_id)
    built = audit_trail.build_trail(history, workflow_id(parcel_id))
    html = audit_routes.templates().get_template("trail.html").render(trail=built)
    response = HTMLResponse(html)
    _security_headers(response, request.app.state.settings)
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Cache-Control"] = "no-store"
    return response


# --- the public register --------------------------------------------------------------


@router.get("/register")
@page
async def register(
    request: Request,
    db: SessionDep,
    list_name: Annotated[str, Query(alias="list", max_length=20)] = "contaminated",
    q: str = "",
    district: str = "",
    include_left: str = "",
    cursor: str = "",
) -> Response:
    """The three published lists, with search, district filter and paging; no sign-in."""
    chosen = list_name if list_name in LIST_NAMES else "contaminated"
    search = q.strip()[:100] or None
    chosen_district = district if district in districts() else None
    current = include_left != "true"
    arguments: dict[str, Any] = {
        "list_name": chosen,
        "current": current,
        "district": chosen_district,
        "search": search,
        "limit": PAGE_SIZE,
    }

    def fetch() -> tuple[Any, dict[str, int]]:
        try:
            found = queries.list_entries(db, **arguments, cursor=cursor or None)
        except queries.BadCursor:
            found = queries.list_entries(db, **arguments)
        counts = {
            name: (
                found.total
                if name == chosen
                else queries.list_entries(db, list_name=name, current=True, limit=1).total
            )
            for name in LIST_NAMES
        }
        return found, counts

    found, counts = await asyncio.to_thread(fetch)  # off the event loop, as the inbox
    kept = {
        k: v
        for k, v in {
            "list": chosen,
            "q": search or "",
            "district": chosen_district or "",
            "include_left": "" if current else "true",
        }.items()
        if v
    }
    return render(
        request,
        "register.html",
        who=web_session.current(request),
        public=True,
        entries=[_public_entry(e, p) for e, p in found.items],
        total=found.total,
        counts=counts,
        chosen=chosen,
        lists=LIST_NAMES,
        filters={"q": search or "", "district": chosen_district or "", "include_left": not current},
        districts=districts(),
        next_url=(
            f"/ui/register?{urlencode({**kept, 'cursor': found.next_cursor})}"
            if found.next_cursor
            else None
        ),
    )


def _public_entry(entry: Any, row: ParcelRow | None) -> dict[str, Any]:
    """What a list shows of an entry: the disclosure fields, no party ids, no run ids."""
    disclosure = (row.disclosure if row else None) or {}
    responsible = ((row.parties if row else None) or {}).get("responsible") or {}
    return {
        "parcel_id": entry.parcel_id,
        "name": entry.name,
        "district": entry.district,
        "area_m2": row.area_m2 if row else None,
        "entered_at": aware(entry.entered_at),
        "left_at": aware(entry.left_at),
        "reason": entry.reason,
        "citation": entry.citation,
        "responsible_party": responsible.get("name"),
        "investigation_conclusion": disclosure.get("investigation_conclusion"),
        "pollutants": disclosure.get("pollutants_over_screening") or [],
        "evaluation_result": disclosure.get("evaluation_result"),
        "evaluation_date": disclosure.get("evaluation_date"),
    }


_BOUNDARIES: dict[str, dict[str, Any] | None] = {}  # run id → boundary (facts never change)
BOUNDARY_CACHE = 2048


async def _boundary(request: Request, row: ParcelRow) -> dict[str, Any] | None:
    """The outline is a fact of the registration, read once from its workflow (the
    registry keeps the centre point only); a down engine leaves the point."""
    if row.run_id in _BOUNDARIES:
        return _BOUNDARIES[row.run_id]
    try:
        client = await get_temporal(request)
        state, _ = await parcel_state(client, request.app.state.settings, row.parcel_id)
        found = state.facts.get("boundary") if state.run_id == row.run_id else None
    except ApiError as error:
        if error.status != 404:
            return None  # the engine is busy or down: the point now, the outline later
        found = None  # its history is gone (retention): the registry's point is all there is
    if len(_BOUNDARIES) >= BOUNDARY_CACHE:
        _BOUNDARIES.pop(next(iter(_BOUNDARIES)))
    _BOUNDARIES[row.run_id] = found
    return found


def _public_documents(db: Session, policy: Policy, parcel_id: str) -> list[DocumentRow]:
    public = {k.value for k in policy.public_document_kinds}
    return [d for d in queries.documents_for(db, parcel_id=parcel_id) if d.kind in public]


@router.get("/register/{parcel_id}")
@page
async def public_profile(
    request: Request, parcel_id: str, db: SessionDep, policy: PolicyDep
) -> Response:
    """What the public may know of a parcel (BJ 30; Law 58, 66): no personal data."""
    row = queries.current_run(db, parcel_id=parcel_id) if PARCEL_ID.match(parcel_id) else None
    if row is None:
        raise ApiError(404, "NotFound", f"parcel {parcel_id[:64]} not found")
    entries = [
        (name, entry)
        for name in LIST_NAMES
        if (entry := queries.list_entry(db, list_name=name, run_id=row.run_id)) is not None
    ]
    boundary = await _boundary(request, row)
    settings: Settings = request.app.state.settings
    with i18n.using(locale_of(request)):
        outline = diagram.outline(
            boundary,
            row.location,
            tile_url=settings.tile_url,
            title=i18n.gettext("Parcel outline"),
        )
    return render(
        request,
        "profile.html",
        who=web_session.current(request),
        public=True,
        row=row,
        responsible=((row.parties or {}).get("responsible") or {}).get("name"),
        disclosure=row.disclosure or {},
        entries=[(name, _public_entry(entry, row)) for name, entry in entries],
        documents=[DocumentOut.of(d) for d in _public_documents(db, policy, parcel_id)],
        outline=outline,
        tiles=bool(settings.tile_url),
        tile_host=urlsplit(settings.tile_url).netloc if settings.tile_url else "",
    )


@router.get("/register/{parcel_id}/documents/{sha256}")
@page
async def public_document(
    request: Request,
    parcel_id: str,
    sha256: str,
    db: SessionDep,
    store: StoreDep,
    policy: PolicyDep,
    range_: Annotated[str | None, Header(alias="range", max_length=100)] = None,
    if_none_match: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """A public document, named by its SHA-256 (the register shows no internal ids)."""
    found = None
    if SHA256.match(sha256) and PARCEL_ID.match(parcel_id):
        public = _public_documents(db, policy, parcel_id)
        found = next((d for d in public if d.sha256 == sha256), None)
    if found is None:
        raise ApiError(404, "NotFound", "no such public document")
    return document_routes.serve_document(
        db, store, parcel_id, found.document_id, range_, if_none_match
    )


# --- wiring ---------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Serve the workbench from `app` (one line in api/app.py's create_app); once."""
    if getattr(app.state, "workbench", False):
        return
    i18n.preload()
    environment()
    app.include_router(router)
    app.state.workbench = True
