"""What every page shares: rendering a template in the caller's language with the
security headers, the refusals answered as pages (`page`), the signed-in caller, and
reading a form post (its media type, limits and CSRF token)."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from api.errors import ApiError
from api.web import FORM_TYPES, i18n
from api.web import session as web_session
from api.web.templating import environment
from landflow.facts import PARCEL_ID_PATTERN
from landflow.settings import Settings
from landflow.vocabulary import Role

PAGE_SIZE = 50
PARCEL_ID = re.compile(PARCEL_ID_PATTERN)
MAX_FORM_FILES = 8
MAX_FORM_FIELDS = 6000  # an investigation report's sample rows, six inputs each


def security_headers(response: Response, settings: Settings) -> None:
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
    security_headers(response, settings)
    response.headers["Cache-Control"] = "no-store" if who else "no-cache"
    lang = request.query_params.get("lang")
    if lang in i18n.LOCALES:
        response.set_cookie(
            i18n.LANG_COOKIE,
            lang,
            max_age=365 * 86400,
            path="/ui",
            samesite="lax",
            httponly=True,
            secure=web_session.secure(request),
        )
    return response


# --- errors and sign-in as pages -----------------------------------------------------


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


def forbidden(detail: str) -> ApiError:
    return ApiError(403, "Forbidden", detail)


async def read_form(request: Request) -> FormData:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in FORM_TYPES:
        raise ApiError(415, "UnsupportedMediaType", "send the form as a browser does")
    return await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)


def csrf_checked(who: web_session.Session, form: FormData) -> None:
    presented = form.get(web_session.CSRF_FIELD)
    if not web_session.csrf_valid(who, presented if isinstance(presented, str) else None):
        raise ApiError(
            403, "CsrfRefused", "the form did not carry this session's csrf_token: reload the page"
        )


def texts_of(form: FormData) -> dict[str, str]:
    """The text inputs of a form (the last one of a repeated name)."""
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def safe_next(target: str | None) -> str:
    if target and target.startswith("/ui/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui/inbox"
