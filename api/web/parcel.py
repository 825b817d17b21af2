"""The parcel page (facts, the procedure diagram, timeline, decisions, documents,
deadline and reminders) and what is done from it: the action forms, document
downloads, the auditor's trail; and the header's "open a parcel" box.

Authorisation is the API's: any signed-in caller reads a parcel, documents follow
`may_read`, an action goes through `act` and the workflow's gate (the page shows a form
only to whom `next_actions` names, and a forged POST is refused by the same gate before
anything is stored), the trail is the auditor's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, cast
from urllib.parse import urlencode

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import Session
from starlette.datastructures import FormData, UploadFile

from api import actions
from api.deps import PolicyDep, RulesDep, SessionDep, SettingsDep, StoreDep, get_temporal
from api.errors import ApiError
from api.routes import audit as audit_routes
from api.routes import documents as document_routes
from api.routes.parcels import act, admit_or_refuse, parcel_state
from api.schemas import DocumentOut
from api.web import diagram, explain, forms, i18n
from api.web import session as web_session
from api.web.explain import Explained
from api.web.pages import (
    PARCEL_ID,
    csrf_checked,
    forbidden,
    locale_of,
    page,
    read_form,
    render,
    security_headers,
    signed_in,
    texts_of,
)
from api.web.templating import flow_label
from audit import trail as audit_trail
from documents.store import DocumentStore
from landflow.facts import ParcelFacts
from landflow.messages import Actor, NextAction, workflow_id
from landflow.policy import Policy
from landflow.procedure import PROCEDURE
from landflow.settings import Settings
from landflow.state import ParcelState
from landflow.vocabulary import Action, Role
from registry import queries
from registry.tables import aware
from rules.engine import RulesEngine
from workflows.gate import matches, next_actions

router = APIRouter()
NOTICE_KINDS = ("reminder", "escalation")


@router.get("/go")
@page
async def go(request: Request, parcel_id: str = "") -> Response:
    """The header's "open a parcel" box (a GET form)."""
    signed_in(request)
    wanted = parcel_id.strip()
    if not PARCEL_ID.match(wanted) or len(wanted) > 64:
        raise ApiError(404, "NotFound", f"no parcel {wanted[:64]!r}")
    return RedirectResponse(f"/ui/parcels/{wanted}", status_code=303)


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
    # The registry's records of the decisions (the state keeps briefs, without inputs).
    records: dict[str, Explained] = {
        r.decision_id: r for r in queries.decisions_for(db, run_id=state.run_id)
    }
    with i18n.using(locale_of(request)):
        svg = diagram.render(
            diagram.Progress(
                visits=tuple(v.stage for v in state.stages),
                current=state.stage,
                step_title=i18n.step(blocking.step) if blocking else None,
            ),
            stage_label=i18n.stage,
            flow_label=flow_label,
            title=i18n.gettext("The procedure, and where this parcel stands"),
        )
        statements = {d.rule: explain.statement(rules, d.rule) for d in state.decisions}
        explanations = {
            d.id: explain.explanation(rules, records.get(d.id, d)) for d in state.decisions
        }
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
        explanations=explanations,
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
        raise forbidden(f"{caller.role.value} neither acts nor has acted on this parcel")
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
    form = await read_form(request)
    csrf_checked(who, form)
    try:
        chosen = Action(action)
    except ValueError:
        raise ApiError(404, "NotFound", f"unknown action {action[:50]!r}") from None
    state, run_status = await _parcel(request, settings, parcel_id)
    texts = texts_of(form)
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
            pacing=request.app.state.pacing,
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
    security_headers(response, request.app.state.settings)
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Cache-Control"] = "no-store"
    return response
