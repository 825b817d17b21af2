"""我的待办 in a real browser, filled by real parcels: a district EPB of its own district
(门头沟区, which no other test uses) owes the closure screening of 52 parcels, more than
one page. One of them runs under a policy whose screening is due in seconds, so its
reminder goes out and its deadline passes while the test watches; it is started last,
yet listed first (oldest deadline first), overdue in red and with its reminder shown.

The parcels come through the API and the registry is written by the workflows'
activities only; the short policy runs on a worker and task queue of its own.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.web.pages import PAGE_SIZE
from landflow.settings import Settings
from service.worker import build_worker
from tests.conftest import api_client
from tests.e2e.record.conftest import policy_file
from tests.e2e.web.conftest import SignIn, serving, until
from tests.helpers import TOKENS, facts, start

pytestmark = pytest.mark.asyncio(loop_scope="session")

DISTRICT = "门头沟区"
TOKEN = "t-depb-mentougou"
NORMAL = PAGE_SIZE + 1  # with the overdue one: a full page and two more
DAY_S = 86_400
DUE_S = 8.0  # the short policy's screening deadline; its reminder 4 s before
STARTING = 4  # parcels registered at once
RED_ROW = "rgb(253, 232, 234)"


@pytest.fixture(scope="module")
def own(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session's registry and engine; a token for 门头沟区's EPB; the short policy on a
    task queue of its own."""
    tmp = tmp_path_factory.mktemp("inbox")
    tokens = tmp / "tokens.json"
    entries = {**TOKENS, TOKEN: {"role": "district_epb", "district": DISTRICT}}
    tokens.write_text(json.dumps(entries, ensure_ascii=False), encoding="utf-8")
    screening = {
        "days": DUE_S / DAY_S,
        "remind_days_before": DUE_S / 2 / DAY_S,
        "escalate_to": "city_epb",
    }
    return settings.model_copy(
        update={
            "tokens_file": tokens,
            "policy_file": policy_file(tmp, steps={"closure_screening": screening}),
            "task_queue": f"landflow-inbox-{uuid.uuid4().hex[:8]}",
        }
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def base_url(
    temporal: WorkflowEnvironment, own: Settings, worker: Worker
) -> AsyncIterator[str]:
    async with serving(own, temporal) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def parcels(
    temporal: WorkflowEnvironment, own: Settings, api: httpx.AsyncClient
) -> AsyncIterator[dict[str, list[str]]]:
    """51 parcels under the usual policy (the session's worker), then one under the short
    policy (a worker of its own, kept running while its timers fire)."""
    tag = uuid.uuid4().hex[:6]
    normal = [f"M{tag}{i:03d}" for i in range(NORMAL)]
    gate = asyncio.Semaphore(STARTING)

    async def register(pid: str) -> None:
        async with gate:
            await start(api, facts(pid, district=DISTRICT, name=f"门头沟地块{pid[-3:]}"))

    await asyncio.gather(*(register(pid) for pid in normal))
    overdue = f"M{tag}due"
    async with build_worker(temporal.client, own), api_client(own, temporal.client) as short:
        await start(short, facts(overdue, district=DISTRICT, name="门头沟逾期地块"))
        yield {"normal": normal, "overdue": [overdue]}


async def rows(page: Page) -> list[dict[str, str]]:
    """The inbox table's rows: parcel, class, deadline (ISO), reminders cell."""
    found = []
    for row in await page.locator("table.inbox tbody tr").all():
        found.append(
            {
                "parcel": await row.get_attribute("data-parcel") or "",
                "class": await row.get_attribute("class") or "",
                "deadline": await row.locator("time").get_attribute("datetime") or "",
                "reminders": (await row.locator("td").last.inner_text()).strip(),
                "days_left": (await row.locator("td.num").inner_text()).strip(),
            }
        )
    return found


async def test_overdue_first_in_red_with_its_reminder_and_the_next_page_has_the_rest(
    base_url: str, sign_in: SignIn, parcels: dict[str, list[str]], screenshots: Path
) -> None:
    (overdue,) = parcels["overdue"]
    page = await sign_in(TOKEN)

    async def flagged() -> bool:
        await page.goto(f"{base_url}/ui/inbox")
        first = await rows(page)
        return bool(first) and first[0]["parcel"] == overdue and "overdue" in first[0]["class"]

    await until(flagged, f"{overdue} overdue at the top of the inbox", seconds=DUE_S + 30)
    await expect(page.locator("p.total")).to_contain_text(str(NORMAL + 1))
    count = page.locator('[data-stage-count="closure_screening"] .count')
    await expect(count).to_have_text(str(NORMAL + 1))
    first_page = await rows(page)
    assert len(first_page) == PAGE_SIZE
    top, rest = first_page[0], first_page[1:]
    assert top["reminders"] == "已发送提醒", top
    assert top["days_left"].startswith("已逾期"), top
    # red: the flag in the error colour (#a4000f), the row washed red (#fde8ea)
    flag = page.locator(f'tr[data-parcel="{overdue}"] .overdue-flag')
    assert await flag.evaluate("e => getComputedStyle(e).color") == "rgb(164, 0, 15)"
    cell = page.locator(f'tr[data-parcel="{overdue}"] td').first
    assert await cell.evaluate("e => getComputedStyle(e).backgroundColor") == RED_ROW
    other = page.locator(f'tr[data-parcel="{rest[0]["parcel"]}"] td').first
    assert await other.evaluate("e => getComputedStyle(e).backgroundColor") != RED_ROW
    assert all("overdue" not in r["class"] and r["reminders"] == "—" for r in rest), rest
    await page.screenshot(path=screenshots / "inbox-overdue.png", full_page=True)
    # the next page: the rest, still in deadline order, and nothing twice
    await page.locator('a[rel="next"]').click()
    await expect(page.locator("table.inbox tbody tr")).to_have_count(NORMAL + 1 - PAGE_SIZE)
    assert "cursor=" in page.url
    second_page = await rows(page)
    assert await page.locator('a[rel="next"]').count() == 0
    shown = [r["parcel"] for r in first_page + second_page]
    assert sorted(shown) == sorted(parcels["normal"] + parcels["overdue"])
    deadlines = [datetime.fromisoformat(r["deadline"]) for r in first_page + second_page]
    assert deadlines == sorted(deadlines)
