"""Signing in and out of the workbench (the identity source and the cookie are
api/web/session.py's).

The sign-in links `make run` prints carry the token (`/ui/login?token=…`, which only
fills the form in); the server's access log keeps those requests with the token
blanked (`HideTokens` on uvicorn's access logger, whatever handlers the logging
configuration gives it).
"""

from __future__ import annotations

import logging
import re

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
ACCESS_LOGGER = "uvicorn.access"
TOKEN_IN_QUERY = re.compile(r"(?<=[?&]token=)[^&#\s\"]+")


class HideTokens(logging.Filter):
    """Blank the value of `token=` in a logged request line (uvicorn passes the path with
    its query as an argument of the record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                TOKEN_IN_QUERY.sub("***", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = TOKEN_IN_QUERY.sub("***", record.msg)
        return True


def hide_tokens_in_access_log() -> None:
    """Once per process (every app built here shares uvicorn's access logger)."""
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, HideTokens) for f in access.filters):
        access.addFilter(HideTokens())


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
    web_session.end(request, response)
    return response
