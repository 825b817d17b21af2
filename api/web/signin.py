"""Signing in and out of the workbench (the identity source and the cookie are
api/web/session.py's)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from api.errors import ApiError
from api.web import i18n
from api.web import session as web_session
from api.web.pages import (
    csrf_checked,
    locale_of,
    page,
    read_form,
    render,
    safe_next,
    signed_in,
    texts_of,
)

router = APIRouter()


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
        next=safe_next(target) if target else "",
        problem=problem,
    )
    web_session.set_login_cookie(request, response, csrf)
    return response


@router.post("/login")
@page
async def login(request: Request) -> Response:
    form = await read_form(request)
    texts = texts_of(form)
    if not web_session.login_token_valid(request, texts.get(web_session.CSRF_FIELD)):
        raise ApiError(403, "CsrfRefused", "the sign-in form has expired: reload it")
    identity = web_session.identity_source(request).sign_in(texts.get("token", ""))
    if identity is None:
        with i18n.using(locale_of(request)):
            problem = i18n.gettext("Unknown or revoked token.")
        return _login_page(request, "", texts.get("next", ""), problem)
    response = RedirectResponse(safe_next(texts.get("next")), status_code=303)
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
    csrf_checked(who, await read_form(request))
    response = RedirectResponse("/ui/login", status_code=303)
    web_session.end(response)
    return response
