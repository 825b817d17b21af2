"""The public register in a real browser, without signing in: the three lists with search
and filters, a listed parcel's profile with its disclosure fields, its outline over map
tiles from a (loopback) tile server, its public documents, and no personal data."""

from __future__ import annotations

import struct
import threading
import uuid
import zlib
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import expect
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from landflow.settings import Settings
from tests.e2e.api.test_lifecycle import _assess, _to_risk_assessment
from tests.e2e.web.conftest import serving, until
from tests.helpers import (
    ACCEPTED,
    DIRTY_SAMPLES,
    EVALUATOR,
    LAND_USER,
    OPINION,
    POLLUTER,
    RETURNED,
    TARGETS,
    TOKENS,
    act,
    auth,
    cite,
    facts,
    get,
    start,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

CONCLUSION_ZH = "有样品超过第1类用地管制值，风险不可接受"  # R5.1 of DIRTY_SAMPLES
# an individual named in a public document's title and file name; no other test uses the
# name (the register lists every parcel of the session, and a company may contain a name)
PERSON = "王小明"

BOUNDARY = {
    "type": "Polygon",
    "coordinates": [
        [
            [116.515, 39.883],
            [116.528, 39.883],
            [116.528, 39.890],
            [116.515, 39.890],
            [116.515, 39.883],
        ]
    ],
}


def png(width: int = 2, height: int = 2, rgb: tuple[int, int, int] = (200, 220, 200)) -> bytes:
    """A real, tiny PNG (for the tile server and the notice-board photo)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


class TileServer:
    """Slippy-map tiles on loopback: every request is recorded, every tile is one PNG."""

    def __init__(self) -> None:
        requested: list[str] = []
        self.requested = requested
        tile = png(256, 256)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requested.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(tile)))
                self.end_headers()
                self.wfile.write(tile)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.template = f"http://127.0.0.1:{self.server.server_port}/{{z}}/{{x}}/{{y}}.png"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tiles() -> Iterator[TileServer]:
    server = TileServer()
    yield server
    server.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def base_url(
    temporal: WorkflowEnvironment, settings: Settings, worker: Worker, tiles: TileServer
) -> AsyncIterator[str]:
    """This module's server has a tile server configured (LANDFLOW_TILE_URL)."""
    with_tiles = settings.model_copy(update={"tile_url": tiles.template})
    async with serving(with_tiles, temporal) as url:
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def listed(api: httpx.AsyncClient) -> dict[str, Any]:
    """A parcel driven to the risk-control-and-remediation list, its investigation returned
    once with an expert panel's names (personal data the public must never see)."""
    pid = f"P{uuid.uuid4().hex[:9]}"
    await start(api, facts(pid, boundary=BOUNDARY))
    await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")
    for review in (RETURNED, None):
        documents = await cite(api, pid, "investigation_report", "reserve_agency")
        body = {
            "samples": DIRTY_SAMPLES,
            "extent_m2": 5e4,
            "degree": "重度",
            "documents": documents,
        }
        await act(api, pid, "investigation_report", body, "reserve_agency")
        if review:
            await act(api, pid, "filing_review", review, "planning_land")
    await act(api, pid, "filing_review", ACCEPTED, "city_epb")
    await act(api, pid, "filing_review", ACCEPTED, "planning_land")
    assessment = {
        "acceptable": False,
        "targets": TARGETS,
        "recommendation": "remediation",
        "documents": await cite(api, pid, "risk_assessment_report", "responsible_party"),
    }
    await act(api, pid, "risk_assessment_report", assessment, "responsible_party")
    await act(api, pid, "risk_assessment_review", ACCEPTED, "city_epb")
    await act(api, pid, "risk_assessment_review", ACCEPTED, "planning_land")
    photo = png(4, 3, (10, 80, 160))
    response = await api.post(  # a public kind, titled and named after a person
        f"/parcels/{pid}/documents",
        files={"file": (f"{PERSON}拍摄的公示牌.png", photo, "image/png")},
        data={"kind": "notice_board_photo", "title": f"拍摄人 {PERSON}"},
        headers=auth("reserve_agency"),
    )
    assert response.status_code == 201, response.text
    parcel = await get(api, pid)
    assert parcel["listed"] and parcel["stage"] == "listing", parcel["stage"]

    async def on_list() -> bool:
        found = await api.get("/lists/contaminated", params={"q": pid})
        return any(e["parcel_id"] == pid for e in found.json()["entries"])

    await until(on_list, f"{pid} on the contaminated list")
    return {"pid": pid, "photo": photo, "parcel": parcel, "document": response.json()}


def private_strings(listed: dict[str, Any]) -> list[str]:
    """What must never appear on a public page: people's names, party and internal ids,
    who uploaded a document, its title and its file name."""
    parcel = listed["parcel"]
    subjects = [e.get("subject") for e in TOKENS.values() if e.get("subject")]
    document = listed["document"]
    return [
        PERSON,
        quote(PERSON),
        document["uploaded_by"],
        document["filename"],
        *OPINION["panel"],
        POLLUTER["id"],
        LAND_USER["id"],
        EVALUATOR["id"],
        parcel["run_id"],
        parcel["workflow_id"],
        listed["document"]["document_id"],
        *subjects,
        "t-reserve",
    ]


async def test_the_lists_render_without_sign_in_with_search_and_filters(
    base_url: str, contexts, listed: dict[str, Any], screenshots: Path
) -> None:
    context = await contexts()
    page = await context.new_page()
    pid = listed["pid"]
    response = await page.goto(f"{base_url}/ui/register?list=contaminated&q={pid}")
    assert response is not None and response.status == 200
    assert await page.locator("form.logout").count() == 0
    await expect(page.locator('a[data-list="contaminated"]')).to_have_attribute(
        "aria-current", "page"
    )
    row = page.locator(f'tr[data-parcel="{pid}"]')
    await expect(row).to_contain_text("原北京焦化厂")
    await expect(row).to_contain_text(POLLUTER["name"])  # the responsible party is public
    await expect(row).to_contain_text("Law 61")
    await expect(row).to_contain_text(CONCLUSION_ZH)  # R5.1, in Chinese
    # the suspected list: the parcel left it; shown only when asked for
    await page.goto(f"{base_url}/ui/register?list=suspected&q={pid}")
    await expect(page.locator(f'tr[data-parcel="{pid}"]')).to_have_count(0)
    await page.get_by_label("包括已移出名录的地块").check()
    await page.get_by_role("button", name="搜索").click()
    await expect(page.locator(f'tr[data-parcel="{pid}"]')).to_have_count(1)
    # a district filter that excludes it
    await page.goto(f"{base_url}/ui/register?list=negative&q={pid}")
    await expect(page.locator(f'tr[data-parcel="{pid}"]')).to_have_count(1)
    await page.get_by_label("所在区").select_option("海淀区")
    await page.get_by_role("button", name="搜索").click()
    await expect(page.locator(f'tr[data-parcel="{pid}"]')).to_have_count(0)
    assert "district=%E6%B5%B7%E6%B7%80%E5%8C%BA" in page.url and "csrf_token" not in page.url
    await page.goto(f"{base_url}/ui/register?list=contaminated")
    await page.screenshot(path=screenshots / "register.png", full_page=True)
    html = await page.content()
    for secret in private_strings(listed):
        assert secret not in html, secret


async def test_the_public_profile_shows_the_disclosure_the_outline_and_public_documents(
    base_url: str, contexts, listed: dict[str, Any], tiles: TileServer, screenshots: Path
) -> None:
    context = await contexts()
    page = await context.new_page()
    pid = listed["pid"]
    await page.goto(f"{base_url}/ui/register?list=contaminated&q={pid}")
    await page.locator(f'tr[data-parcel="{pid}"] a').click()
    await page.wait_for_url(f"{base_url}/ui/register/{pid}")
    await expect(page.locator('tr[data-fact="district"] td')).to_have_text("朝阳区")
    await expect(page.locator('tr[data-fact="area_m2"] td')).to_have_text("1,400,000")
    await expect(page.locator('tr[data-fact="responsible_party"] td')).to_have_text(
        POLLUTER["name"]
    )
    pollutants = page.locator('tr[data-fact="pollutants_over_screening"] td')
    await expect(pollutants).not_to_have_text("—")
    await expect(page.locator('tr[data-fact="investigation_conclusion"] td')).not_to_have_text("—")
    await expect(page.locator('tr[data-list="contaminated"]')).to_contain_text("Law")
    # the conclusion (R5) and the reasons (R11, the procedure's own) in Chinese
    conclusion = page.locator('tr[data-fact="investigation_conclusion"] td')
    await expect(conclusion).to_have_text(CONCLUSION_ZH)
    await expect(page.locator('tr[data-list="contaminated"]')).to_contain_text(
        "有样品超过管制值，无论报告结论如何，风险均视为不可接受，地块纳入名录"
    )
    await expect(page.locator('tr[data-list="suspected"]')).to_contain_text("建立疑似污染地块档案")
    english = [d["explanation"] for d in listed["parcel"]["decisions"]]
    english.append("suspected-contaminated-parcel file")
    text = await page.locator("main").inner_text()
    assert [e for e in english if e in text] == []
    await expect(page.locator('tr[data-list="suspected"]')).to_be_visible()
    # the outline, in the tiles' own pixels, over tiles the browser fetched
    outline = page.locator("svg.outline-map")
    await expect(outline.locator("path.boundary")).to_have_count(1)
    zoom = await outline.get_attribute("data-zoom")
    hrefs = [await i.get_attribute("href") for i in await outline.locator("image.tile").all()]
    assert hrefs and all(h.startswith(tiles.template.split("{z}")[0] + f"{zoom}/") for h in hrefs)

    async def fetched() -> bool:
        return any(path.startswith(f"/{zoom}/") for path in tiles.requested)

    await until(fetched, "the browser to fetch the map tiles")
    # the public document, named by its SHA-256, downloads without a token
    link = page.get_by_role("link", name="公告牌照片")
    href = await link.get_attribute("href")
    assert href == f"/ui/register/{pid}/documents/{listed['document']['sha256']}"
    download = await context.request.get(base_url + href)
    assert download.status == 200 and await download.body() == listed["photo"]
    disposition = download.headers["content-disposition"]
    assert 'filename="notice_board_photo.png"' in disposition, disposition
    assert not [s for s in private_strings(listed) if s in disposition], disposition
    # the investigation report is not a public kind
    report = await page.locator("body").inner_text()
    assert "土壤污染状况调查报告" not in report
    await page.screenshot(path=screenshots / "public-profile.png", full_page=True)
    html = await page.content()
    for secret in private_strings(listed):
        assert secret not in html, secret
    missing = await context.request.get(f"{base_url}/ui/register/no-such-parcel")
    assert missing.status == 404


async def test_the_district_government_is_named_when_r4_makes_it_responsible(
    base_url: str, contexts, api: httpx.AsyncClient
) -> None:
    """R4.1 (Law 68): the government recovered the right from the polluter, so the district
    government is responsible; the list and the profile name it, never a blank."""
    pid = f"G{uuid.uuid4().hex[:9]}"
    polluter = {**POLLUTER, "status": "exists", "is_former_right_holder": True}
    await _to_risk_assessment(api, pid, DIRTY_SAMPLES, polluter=polluter)
    await _assess(
        api,
        pid,
        "district_government",
        acceptable=False,
        targets=TARGETS,
        recommendation="remediation",
    )
    page = await (await contexts()).new_page()

    async def listed() -> bool:
        await page.goto(f"{base_url}/ui/register?list=contaminated&q={pid}")
        return await page.locator(f'tr[data-parcel="{pid}"]').count() == 1

    await until(listed, f"{pid} on the contaminated list")
    await expect(page.locator(f'tr[data-parcel="{pid}"]')).to_contain_text("朝阳区人民政府")
    await page.goto(f"{base_url}/ui/register/{pid}")
    responsible = page.locator('tr[data-fact="responsible_party"] td')
    await expect(responsible).to_have_text("朝阳区人民政府")
