"""Registering a parcel (the reserve agency): the facts form, with a preview of what the
rules would decide (the dry-run) before the parcel starts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.deps import RulesDep, SettingsDep, get_temporal
from api.errors import ApiError
from api.routes.parcels import start_parcel
from api.web import explain, forms, i18n
from api.web import session as web_session
from api.web.pages import csrf_checked, locale_of, page, read_form, render, signed_in, texts_of
from landflow.facts import ParcelFacts
from landflow.vocabulary import Role
from rules.engine import RulesEngine
from rules.sequence import dry_run

router = APIRouter()


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
        statements = {d.rule: explain.statement(rules, d.rule) for d in preview or []}
        explanations = [explain.explanation(rules, d) for d in preview or []]
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
        explanations=explanations,
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
    form = await read_form(request)
    csrf_checked(who, form)
    values = forms.compact(forms.facts_form(), texts_of(form))
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
    form = await read_form(request)
    csrf_checked(who, form)
    spec = forms.facts_form()
    values = forms.compact(spec, texts_of(form))
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
