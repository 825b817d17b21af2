"""A real HTTP server for the browser: uvicorn serving `create_app(settings)` with the
workbench installed, on the session's event loop (so it shares the dev server, the worker
and the registry with the `api` fixture), and Debian's chromium driven by Playwright.

No browser is a failure, not a skip: the pages are only tested in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import uvicorn
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.web.routes import install
from landflow.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / ".data" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_S = 20.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # Ctrl-C stays pytest's


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serving(
    settings: Settings, temporal: WorkflowEnvironment, **options: Any
) -> AsyncIterator[str]:
    """`create_app(settings)` with the workbench, over real HTTP on loopback; `options`
    go to uvicorn's Config (its access log, which proxies it trusts)."""
    app = create_app(settings)
    install(app)
    app.state.temporal = temporal.client
    port = _free_port()
    config = {"log_level": "warning", "lifespan": "off", **options}
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, **config))
    task = asyncio.create_task(server.serve())
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not server.started:
        if task.done():
            task.result()
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail("uvicorn did not start serving the workbench")
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        app.state.engine.dispose()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def base_url(
    temporal: WorkflowEnvironment, settings: Settings, worker: Worker
) -> AsyncIterator[str]:
    async with serving(settings, temporal) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    """Chromium, once per module; failing (not skipping) when it cannot be had."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    async with async_playwright() as playwright:
        try:
            launched = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
            )
        except Exception as exc:  # a browser that cannot start is a failed suite
            pytest.fail(f"chromium at {CHROMIUM} did not start: {exc}")
        yield launched
        await launched.close()


SignIn = Callable[..., Awaitable[Page]]


@pytest_asyncio.fixture(loop_scope="session")
async def contexts(browser: Browser) -> AsyncIterator[Callable[..., Awaitable[BrowserContext]]]:
    """`await new_context(**options)`: a fresh browser profile (own cookies), Chinese
    unless told otherwise, closed after the test."""
    opened: list[BrowserContext] = []

    async def make(**options: Any) -> BrowserContext:
        context = await browser.new_context(
            locale=options.pop("locale", "zh-CN"),
            viewport=options.pop("viewport", {"width": 1280, "height": 900}),
            **options,
        )
        context.set_default_timeout(WAIT_S * 1000)
        opened.append(context)
        return context

    yield make
    for context in opened:
        await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def sign_in(base_url: str, contexts: Callable[..., Awaitable[BrowserContext]]) -> SignIn:
    """`await sign_in(token)`: a page of a new profile, signed in through the login form
    (the link `make run` prints fills the token in; the button posts it)."""

    async def go(token: str, button: str = "登录", **options: Any) -> Page:
        page = await (await contexts(**options)).new_page()
        await page.goto(f"{base_url}/ui/login?token={token}")
        await page.locator("main").get_by_role("button", name=button).click()
        await page.wait_for_url(f"{base_url}/ui/inbox")
        return page

    return go


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = WAIT_S) -> None:
    """Poll `check` until it holds, failing with `what` after `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"timed out after {seconds:g}s waiting for {what}")
        await asyncio.sleep(0.25)
