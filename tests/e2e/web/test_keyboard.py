"""The workbench by keyboard alone, in a real browser: a district EPB clerk signs in,
opens a parcel from the header's box and gives the closure screening, with Tab, typing,
arrow keys and Enter only. Every element that takes the focus shows it (a computed
outline), and every request the pages make goes to the workbench's own server (no CDN,
no font or script from the internet)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.helpers import facts, get, start

pytestmark = pytest.mark.asyncio(loop_scope="session")

MAX_TABS = 60
MIN_OUTLINE_PX = 2.0
FOCUSED = """() => {
  const e = document.activeElement;
  const s = getComputedStyle(e);
  return {
    tag: e.tagName.toLowerCase(), id: e.id, name: e.getAttribute("name") || "",
    type: e.getAttribute("type") || "", value: "value" in e ? String(e.value) : "",
    form: e.form ? (e.form.dataset.action || e.form.className) : "",
    outline: s.outlineStyle, width: parseFloat(s.outlineWidth) || 0,
  };
}"""

Focus = dict[str, Any]


async def focused(page: Page) -> Focus:
    return await page.evaluate(FOCUSED)


def visible(focus: Focus) -> None:
    """The focus is drawn: a solid outline of at least 2 px (workbench.css)."""
    assert focus["outline"] != "none" and focus["width"] >= MIN_OUTLINE_PX, focus


async def tab_to(page: Page, wanted: Callable[[Focus], bool], what: str) -> Focus:
    """Press Tab until the focus is on `what`, checking each stop shows its focus."""
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        now = await focused(page)
        assert now["tag"] != "body", f"the focus left the page before reaching {what}"
        visible(now)
        if wanted(now):
            return now
    pytest.fail(f"{what} not reached in {MAX_TABS} Tabs")


async def test_the_screening_form_by_keyboard_alone_with_visible_focus_and_no_outside_request(
    base_url: str, contexts, api: httpx.AsyncClient
) -> None:
    pid = f"K{uuid.uuid4().hex[:9]}"
    await start(api, facts(pid, name="键盘操作测试地块"))
    context = await contexts()
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = await context.new_page()

    # sign in: the link fills the token in; Tab to it and press Enter
    await page.goto(f"{base_url}/ui/login?token=t-depb")
    await tab_to(page, lambda f: f["name"] == "token", "the token field")
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base_url}/ui/inbox")
    # the header's "open parcel" box
    await tab_to(page, lambda f: f["name"] == "parcel_id", "the open-parcel box")
    await page.keyboard.type(pid)
    await page.keyboard.press("Enter")
    await page.wait_for_url(f"{base_url}/ui/parcels/{pid}")

    # the screening form: choose the result with the arrow keys, type the raw materials
    def screening(name: str) -> Callable[[Focus], bool]:
        return lambda f: f["form"] == "closure_screening" and f["name"] == name

    result = await tab_to(page, screening("result"), "the result select")
    assert result["tag"] == "select"
    for _ in range(5):
        if (await focused(page))["value"] == "suspected":
            break
        await page.keyboard.press("ArrowDown")
    assert (await focused(page))["value"] == "suspected"
    await tab_to(page, screening("raw_materials"), "the raw materials field")
    await page.keyboard.type("焦煤、焦油")
    button = await tab_to(
        page,
        lambda f: f["form"] == "closure_screening" and f["tag"] == "button",
        "the submit button",
    )
    assert button["type"] == "submit"
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(rf"/ui/parcels/{pid}\?done=closure_screening"))
    await expect(page.locator('svg.procedure [data-current="true"]')).to_have_attribute(
        "data-stage", "investigation"
    )
    parcel = await get(api, pid)
    (screened,) = [a for a in parcel["actions"] if a["action"] == "closure_screening"]
    assert parcel["stage"] == "investigation" and screened["role"] == "district_epb"

    # every request went to the workbench itself; the assets were among them
    own = urlsplit(base_url).netloc
    outside = [url for url in requested if urlsplit(url).netloc != own]
    assert outside == [], outside
    assert any("/ui/static/workbench.css" in url for url in requested), requested
    assert any("/ui/static/htmx.min.js" in url for url in requested), requested
