"""Workbench sessions against a real server: Secure cookies where the deployment says so
(or the request came over HTTPS through a trusted proxy), sign-out that ends the session
on the server so a copied cookie stops working, and sign-in links whose token never
reaches the access log."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from playwright.async_api import expect
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.web.session import LOGIN_COOKIE, SESSION_COOKIE
from landflow.settings import Settings
from service.logs import json_handler
from tests.e2e.web.conftest import SignIn, serving

pytestmark = pytest.mark.asyncio(loop_scope="session")

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HTTPS = {"X-Forwarded-Proto": "https"}


def set_cookie(response: httpx.Response, name: str) -> tuple[str, set[str]]:
    """The value and the attributes (lower case) of the cookie `name` the response sets."""
    for header in response.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        if first.startswith(f"{name}="):
            return first.split("=", 1)[1], {a.split("=")[0].lower() for a in attributes}
    raise AssertionError(f"{name} not set: {response.headers.get_list('set-cookie')}")


async def signed_in_http(
    client: httpx.AsyncClient, token: str, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, httpx.Response]:
    """The sign-in form and the sign-in, with the cookies sent by hand (a cookie jar keeps
    a Secure cookie away from http://)."""
    form = await client.get("/ui/login", headers=headers)
    csrf = CSRF.search(form.text)
    assert form.status_code == 200 and csrf, form.text
    login, _ = set_cookie(form, LOGIN_COOKIE)
    client.cookies.clear()
    signed = await client.post(
        "/ui/login",
        data={"token": token, "csrf_token": csrf[1]},
        headers={**(headers or {}), "Cookie": f"{LOGIN_COOKIE}={login}"},
    )
    client.cookies.clear()
    assert signed.status_code == 303, signed.text
    return form, signed


async def secure_flags(url: str, headers: dict[str, str] | None = None) -> tuple[bool, bool]:
    """Is (the login form's CSRF cookie, the session cookie) marked Secure?"""
    async with httpx.AsyncClient(base_url=url) as client:
        form, signed = await signed_in_http(client, "t-depb", headers)
    return (
        "secure" in set_cookie(form, LOGIN_COOKIE)[1],
        "secure" in set_cookie(signed, SESSION_COOKIE)[1],
    )


async def test_secure_cookies_setting_marks_the_session_and_csrf_cookies(
    temporal: WorkflowEnvironment, settings: Settings, worker: Worker
) -> None:
    secure = settings.model_copy(update={"secure_cookies": True})
    async with serving(secure, temporal) as url:
        assert await secure_flags(url) == (True, True)  # even over plain http (behind TLS)
    async with serving(settings, temporal) as url:
        assert settings.secure_cookies is False
        assert await secure_flags(url) == (False, False)
        # HTTPS said by a proxy uvicorn trusts (loopback by default: forwarded_allow_ips)
        assert await secure_flags(url, HTTPS) == (True, True)
    async with serving(settings, temporal, forwarded_allow_ips="192.0.2.1") as url:
        assert await secure_flags(url, HTTPS) == (False, False)  # anyone else: ignored


async def test_sign_out_ends_the_session_and_a_copied_cookie_with_it(
    base_url: str, contexts, sign_in: SignIn
) -> None:
    page = await sign_in("t-depb")
    (cookie,) = [c for c in await page.context.cookies() if c["name"] == SESSION_COOKIE]
    other_browser = await sign_in("t-depb")  # the same token, a session of its own
    copied = await contexts()
    await copied.add_cookies([cookie])  # what a stolen or copied cookie would be
    thief = await copied.new_page()
    await thief.goto(f"{base_url}/ui/inbox")
    assert thief.url == f"{base_url}/ui/inbox"  # it works while the session is open
    csrf = await thief.locator("form.logout input[name=csrf_token]").get_attribute("value")
    assert csrf
    await page.get_by_role("button", name="退出登录").click()
    await page.wait_for_url(re.compile(r"/ui/login"))
    # the copied cookie is still signed and unexpired, but its session has ended
    await thief.goto(f"{base_url}/ui/inbox")
    assert "/ui/login" in thief.url
    refused = await copied.request.post(
        f"{base_url}/ui/logout", form={"csrf_token": csrf}, max_redirects=0
    )
    assert refused.status == 401
    # signing out ends that session only
    await other_browser.goto(f"{base_url}/ui/inbox")
    await expect(other_browser.locator("h1")).to_have_text("我的待办")


@contextmanager
def access_log() -> Iterator[io.StringIO]:
    """What `landflow api` logs: uvicorn's access lines through the JSON handler on the
    root logger (service/logs.py), at INFO. (A server started with uvicorn's own logging
    config earlier in this process stopped its loggers propagating: undone here.)"""
    stream = io.StringIO()
    handler = json_handler(stream)
    root, access = logging.getLogger(), logging.getLogger("uvicorn.access")
    chain = (access, logging.getLogger("uvicorn"))
    saved = root.level, access.level, [logger.propagate for logger in chain]
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for logger in chain:
        logger.propagate = True
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        access.setLevel(saved[1])
        for logger, propagate in zip(chain, saved[2], strict=True):
            logger.propagate = propagate


async def test_the_sign_in_links_token_never_reaches_the_access_log(
    temporal: WorkflowEnvironment, settings: Settings, worker: Worker
) -> None:
    links = ["/ui/login?token=t-depb", "/ui/login?next=%2Fui%2Finbox&token=t-cityepb&lang=zh"]
    with access_log() as stream:
        async with (
            serving(settings, temporal, log_config=None, log_level="info") as url,
            httpx.AsyncClient(base_url=url) as client,
        ):
            for link in links:
                response = await client.get(link)
                assert response.status_code == 200  # the link still fills the form in
                assert 'value="t-' in response.text
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    served = [line["message"] for line in lines if line["logger"] == "uvicorn.access"]
    logged = [message for message in served if "/ui/login" in message]
    assert len(logged) == len(links), served
    assert [m for m in logged if "t-depb" in m or "t-cityepb" in m] == []
    assert "token=" in logged[0]  # the line says a token came, not which
    assert "next=%2Fui%2Finbox" in logged[1] and "lang=zh" in logged[1]  # the rest stays
