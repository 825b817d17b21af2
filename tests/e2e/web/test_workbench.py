"""The workbench in a real browser: one parcel (a closed coking plant, 原北京焦化厂) is
registered on the new-parcel page, screened, investigated and reviewed by the bureaus
from their own inboxes, then guarded against other companies and forged posts.

The tests run in file order and share the parcel (`journey`); each starts from where
the previous one left it and says so when that is not the case.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Locator, Page, expect

from tests.e2e.web.conftest import SignIn, until
from tests.helpers import DIRTY_SAMPLES, OPINION, TARGETS, act, auth, cite, facts, get, pdf, start

pytestmark = pytest.mark.asyncio(loop_scope="session")


@dataclass
class Journey:
    pid: str = field(default_factory=lambda: f"W{uuid.uuid4().hex[:9]}")


@pytest.fixture(scope="module")
def journey() -> Journey:
    return Journey()


def parcel_url(base_url: str, journey: Journey) -> str:
    return f"{base_url}/ui/parcels/{journey.pid}"


async def current_stage(page: Page) -> str | None:
    return await page.locator('svg.procedure [data-current="true"]').get_attribute("data-stage")


async def in_inbox(page: Page, base_url: str, pid: str, step: str) -> None:
    """Reload the inbox until the parcel's step is listed (the registry follows the
    workflow by an activity, a moment after the action)."""

    async def listed() -> bool:
        await page.goto(f"{base_url}/ui/inbox")
        for _ in range(20):  # other tests' parcels may fill the first pages
            if await page.locator(f'tr[data-parcel="{pid}"][data-step="{step}"]').count():
                return True
            following = page.locator('a[rel="next"]')
            if not await following.count():
                return False
            await following.click()
        return False

    await until(listed, f"{pid} at {step} in the inbox")


def control(form: Locator, name: str) -> Locator:
    """The input, select or textarea of the field `name` (its dotted path)."""
    return form.locator(f'[data-field="{name}"]').locator("input, select, textarea").first


async def csrf_of(page: Page) -> str:
    token = await page.locator("form.logout input[name=csrf_token]").get_attribute("value")
    assert token
    return token


async def test_sign_in_is_a_signed_httponly_session_and_every_form_has_csrf(
    base_url: str, contexts, sign_in: SignIn
) -> None:
    context = await contexts()
    page = await context.new_page()
    # not signed in: the inbox sends the caller to the sign-in form
    await page.goto(f"{base_url}/ui/inbox")
    assert "/ui/login" in page.url
    # the link `make run` prints fills the token in; only the POST signs in
    await page.goto(f"{base_url}/ui/login?token=t-depb")
    assert await page.locator("input[name=token]").input_value() == "t-depb"
    assert await page.locator("form.login input[type=hidden][name=csrf_token]").count() == 1
    assert not [c for c in await context.cookies() if c["name"] == "landflow_session"]
    # a POST without the login form's token is refused, and signs nobody in
    refused = await context.request.post(
        f"{base_url}/ui/login", form={"token": "t-depb"}, max_redirects=0
    )
    assert refused.status == 403
    assert not [c for c in await context.cookies() if c["name"] == "landflow_session"]
    # an unknown token: the form again, with the reason
    await page.fill("input[name=token]", "not-a-token")
    await page.locator("main").get_by_role("button", name="登录").click()
    await expect(page.locator(".error-summary")).to_contain_text("令牌无效")
    # the right one: the inbox, a signed cookie that is HttpOnly, SameSite, expiring
    await page.fill("input[name=token]", "t-depb")
    await page.locator("main").get_by_role("button", name="登录").click()
    await page.wait_for_url(f"{base_url}/ui/inbox")
    (cookie,) = [c for c in await context.cookies() if c["name"] == "landflow_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax" and cookie["path"] == "/ui"
    assert 0 < cookie["expires"] - datetime.now(UTC).timestamp() <= 8 * 3600 + 60
    assert "t-depb" not in cookie["value"]
    for form in await page.locator("form").all():
        assert await form.locator("input[name=csrf_token]").count() == 1, await form.inner_html()
    await expect(page.locator(".who")).to_contain_text("区生态环境局 · 朝阳区")
    # signing out ends the session
    await page.get_by_role("button", name="退出登录").click()
    await page.wait_for_url(re.compile(r"/ui/login"))
    await page.goto(f"{base_url}/ui/inbox")
    assert "/ui/login" in page.url


async def test_reserve_agency_previews_the_rules_then_registers(
    base_url: str, sign_in: SignIn, journey: Journey, screenshots: Path
) -> None:
    page = await sign_in("t-reserve")
    await page.get_by_role("link", name="新建地块").click()
    await page.wait_for_url(f"{base_url}/ui/parcels/new")
    form = page.locator("#facts-form")
    await form.locator("#f-new-parcel_id").fill(journey.pid)
    await form.locator("#f-new-district").select_option("朝阳区")
    await form.locator("#f-new-area_m2").fill("1400000")
    await form.locator("#f-new-current_use").select_option("industrial")
    await form.locator("#f-new-industry").select_option("coking")
    await form.locator("#f-new-enterprise_closed").check()
    await form.locator("#f-new-right_status").select_option("recovered")
    await form.locator("#f-new-planned_use").fill("residential")
    await form.locator("#f-new-polluter-id").fill("91110105POLLUTER01")
    await form.locator("#f-new-polluter-name").fill("北京焦化厂")
    await form.locator("#f-new-polluter-status").select_option("exists")
    await form.locator("#f-new-location-lat").fill("39.8865")
    await form.locator("#f-new-location-lon").fill("116.5214")
    # the name is missing: the preview button (no script needed) says so beside the field
    await page.get_by_role("button", name="预判规则结果").click()
    await expect(form.locator('[data-field="name"] .error')).to_have_text("此项必填")
    assert await page.locator("#preview [data-rule]").count() == 0
    # the live part: a change anywhere in the form refreshes the preview in place (htmx)
    page_url = page.url
    await page.locator("#f-new-name").fill("原北京焦化厂")
    await page.locator("#f-new-name").blur()
    preview = page.locator("#preview")
    await expect(preview.locator('[data-rule="R3"]')).to_have_count(1)
    assert page.url == page_url
    await page.get_by_role("button", name="预判规则结果").click()
    await expect(preview.locator('[data-rule="R3"]')).to_have_attribute("data-outcome", "required")
    await expect(preview.locator('[data-rule="R6"]')).to_have_attribute("data-outcome", "required")
    # explained in Chinese from the row's because_zh, not the English the history keeps
    await expect(preview.locator('[data-rule="R3"]')).to_contain_text("地块上的企业已关停")
    await expect(preview.locator('[data-rule="R3"]')).not_to_contain_text("shut down")
    await page.screenshot(path=screenshots / "new-parcel-preview.png", full_page=True)
    await page.get_by_role("button", name="登记并启动").click()
    await page.wait_for_url(re.compile(rf"/ui/parcels/{journey.pid}\?done=started"))
    assert await current_stage(page) == "closure_screening"
    await expect(page.locator('tr[data-fact="name"] td')).to_have_text("原北京焦化厂")
    # the agency does not screen: no form for it
    assert await page.locator("form.action-form").count() == 0


async def test_district_epb_screens_from_the_inbox(
    base_url: str, sign_in: SignIn, journey: Journey, screenshots: Path, api: httpx.AsyncClient
) -> None:
    other = f"{journey.pid}b"  # a second closed plant in the district, and one elsewhere
    await start(api, facts(other, name="原北京化工二厂", industry="chemical"))
    await start(api, facts(f"{journey.pid}c", district="海淀区", name="海淀某电镀厂"))
    page = await sign_in("t-depb")
    await in_inbox(page, base_url, other, "closure_screening")
    await in_inbox(page, base_url, journey.pid, "closure_screening")
    row = page.locator(f'tr[data-parcel="{journey.pid}"]')
    await expect(row).to_contain_text("关停企业筛查")
    await expect(row.locator("time")).to_contain_text("UTC+8")
    assert await page.locator(f'tr[data-parcel="{journey.pid}c"]').count() == 0  # 海淀区's
    count = page.locator('[data-stage-count="closure_screening"] .count')
    assert int(await count.inner_text()) >= 2
    # filters: by stage (nothing of this EPB is at filing), then back to all
    await page.locator("#filter-stage").select_option("filing")
    await page.get_by_role("button", name="筛选").click()
    await expect(page.locator("table.inbox")).to_have_count(0)
    await page.locator("#filter-stage").select_option("closure_screening")
    await page.locator("#filter-overdue").select_option("false")
    await page.get_by_role("button", name="筛选").click()
    shown = page.locator("table.inbox tbody tr")
    await expect(shown.first).to_be_visible()
    assert {await r.get_attribute("data-step") for r in await shown.all()} == {"closure_screening"}
    assert "csrf_token" not in page.url
    await page.screenshot(path=screenshots / "inbox.png", full_page=True)
    await row.get_by_role("link", name=journey.pid).click()
    await page.wait_for_url(parcel_url(base_url, journey))
    assert await current_stage(page) == "closure_screening"
    form = page.locator('form.action-form[data-action="closure_screening"]')
    # no result chosen: the 422 of the API, beside its field, nothing applied
    await control(form, "notes").fill("焦油残留")
    await form.get_by_role("button", name=re.compile("提交")).click()
    await page.wait_for_url(re.compile(rf"/ui/parcels/{journey.pid}/actions/closure_screening"))
    form = page.locator('form.action-form[data-action="closure_screening"]')
    error = form.locator('[data-field="result"] .error')
    await expect(error).to_have_text("此项必填")
    await expect(control(form, "result")).to_have_attribute("aria-invalid", "true")
    await expect(control(form, "notes")).to_have_value("焦油残留")
    await error.scroll_into_view_if_needed()
    await page.screenshot(path=screenshots / "form-error.png", full_page=True)
    assert await current_stage(page) == "closure_screening"
    # a good one: the stage moves, the diagram follows
    await control(form, "result").select_option("suspected")
    await control(form, "raw_materials").fill("焦煤、焦油")
    await form.get_by_role("button", name=re.compile("提交")).click()
    await page.wait_for_url(re.compile(r"\?done=closure_screening"))
    assert await current_stage(page) == "investigation"
    visited = page.locator('svg.procedure [data-stage="closure_screening"]')
    await expect(visited).to_have_attribute("data-current", "false")
    await expect(visited).to_have_class(re.compile(r"\bvisited\b"))
    taken = page.locator('svg.procedure [data-from="closure_screening"][data-to="investigation"]')
    await expect(taken).to_have_attribute("data-taken", "true")
    await expect(page.locator('tr[data-rule="R1"]')).to_contain_text("BJ")
    r1 = page.locator('tr[data-rule="R1"]')
    await expect(r1).to_contain_text("区生态环境部门已将该地块列入疑似污染地块名单")
    await expect(r1).not_to_contain_text("suspected-contaminated-parcel file")
    await expect(page.locator('tr[data-action="closure_screening"]')).to_contain_text("朝阳区")
    # the screening is done: the EPB has no form left
    assert await page.locator("form.action-form").count() == 0


async def test_forms_work_without_javascript(
    base_url: str, sign_in: SignIn, journey: Journey, api: httpx.AsyncClient
) -> None:
    page = await sign_in("t-reserve", java_script_enabled=False)
    await page.goto(parcel_url(base_url, journey))
    form = page.locator('form.action-form[data-action="investigation_report"]')
    rows = form.locator('fieldset[data-rows="samples"]')
    await rows.locator('[name="samples[0].item"]').fill("铅")
    await rows.locator('[name="samples[0].value_mg_kg"]').fill("900")
    await rows.get_by_role("button", name="添加一行").click()  # a submit: the server adds it
    await page.wait_for_url(re.compile(r"/actions/investigation_report$"))
    rows = page.locator('form[data-action="investigation_report"] fieldset[data-rows="samples"]')
    await expect(rows.locator("tbody tr")).to_have_count(3)  # the filled one and two blank
    await expect(rows.locator('[name="samples[0].item"]')).to_have_value("铅")
    assert (await get(api, journey.pid))["stage"] == "investigation"  # nothing was applied
    assert await rows.locator("button.remove-row").first.is_hidden()


async def test_investigation_report_with_sample_rows_and_an_inline_upload(
    base_url: str, sign_in: SignIn, journey: Journey, api: httpx.AsyncClient
) -> None:
    page = await sign_in("t-reserve")  # the right is recovered: the agency investigates (R2)
    await page.goto(parcel_url(base_url, journey))
    form = page.locator('form.action-form[data-action="investigation_report"]')
    rows = form.locator('fieldset[data-rows="samples"]')
    await expect(rows.locator("tbody tr")).to_have_count(1)
    await rows.get_by_role("button", name="添加一行").click()  # in place, by the script
    await expect(rows.locator("tbody tr")).to_have_count(2)
    assert page.url == parcel_url(base_url, journey)
    for index, sample in enumerate(DIRTY_SAMPLES):
        await rows.locator(f'[name="samples[{index}].item"]').fill(sample["item"])
        await rows.locator(f'[name="samples[{index}].value_mg_kg"]').fill(
            str(sample["value_mg_kg"])
        )
    await control(form, "extent_m2").fill("50000")
    await control(form, "degree").fill("重度")
    await control(form, "pollutants").fill("苯并[a]芘\n铅")
    report = pdf(f"investigation {journey.pid}")
    await form.locator('input[name="upload.investigation_report"]').set_input_files(
        {"name": "调查报告.pdf", "mimeType": "application/pdf", "buffer": report}
    )
    await form.get_by_role("button", name=re.compile("提交")).click()
    await page.wait_for_url(re.compile(r"\?done=investigation_report"))
    assert await current_stage(page) == "filing"
    documents = page.locator("table.documents tbody tr")
    await expect(documents).to_have_count(1)
    await expect(documents.first).to_contain_text("调查报告.pdf")
    parcel = await get(api, journey.pid)
    (entry,) = [a for a in parcel["actions"] if a["action"] == "investigation_report"]
    assert entry["samples"]["count"] == 2
    assert entry["documents"][0]["kind"] == "investigation_report"
    sha = entry["documents"][0]["sha256"]
    await expect(documents.first.locator("code.hash")).to_have_text(sha)
    download = await page.request.get(
        base_url + await documents.first.locator("a").get_attribute("href")
    )
    assert download.status == 200 and await download.body() == report


async def test_both_bureaus_review_from_their_own_inboxes(
    base_url: str, sign_in: SignIn, journey: Journey, api: httpx.AsyncClient, screenshots: Path
) -> None:
    # the planning bureau returns the report: the loop back to the investigation
    planning = await sign_in("t-planning")
    await in_inbox(planning, base_url, journey.pid, "filing_review")
    await planning.locator(f'tr[data-parcel="{journey.pid}"] a').click()
    form = planning.locator('form.action-form[data-action="filing_review"]')
    await control(form, "decision").select_option("returned")
    await control(form, "reasons").fill("采样点不足")
    await control(form, "opinion.conclusion").fill(OPINION["conclusion"])
    await control(form, "opinion.required_revisions").fill("\n".join(OPINION["required_revisions"]))
    await control(form, "opinion.date").fill(OPINION["date"])
    await form.get_by_role("button", name=re.compile("提交")).click()
    await planning.wait_for_url(re.compile(r"\?done=filing_review"))
    assert await current_stage(planning) == "investigation"
    loop = planning.locator('svg.procedure [data-from="filing"][data-to="investigation"]')
    await expect(loop).to_have_attribute("data-loop", "true")
    await expect(loop).to_have_attribute("data-taken", "true")
    # the revised report comes through the API; both bureaus then accept from their inboxes
    documents = await cite(api, journey.pid, "investigation_report", "reserve_agency")
    body = {"samples": DIRTY_SAMPLES, "extent_m2": 60_000, "degree": "重度", "documents": documents}
    await act(api, journey.pid, "investigation_report", body, "reserve_agency")
    for token in ("t-cityepb", "t-planning"):
        page = await sign_in(token)
        await in_inbox(page, base_url, journey.pid, "filing_review")
        await page.locator(f'tr[data-parcel="{journey.pid}"] a').click()
        form = page.locator('form.action-form[data-action="filing_review"]')
        await control(form, "decision").select_option("accepted")
        await form.get_by_role("button", name=re.compile("提交")).click()
        await page.wait_for_url(re.compile(r"\?done=filing_review"))
    assert await current_stage(page) == "risk_assessment"
    await page.screenshot(path=screenshots / "parcel.png", full_page=True)
    filing = page.locator('svg.procedure [data-stage="filing"]')
    await expect(filing).to_have_attribute("data-visits", "2")
    timeline = [
        await r.get_attribute("data-stage")
        for r in await page.locator("table.timeline tbody tr").all()
    ]
    assert timeline == [
        "intake", "closure_screening", "investigation", "filing", "investigation", "filing",
        "risk_assessment",
    ]  # fmt: skip


async def test_another_company_sees_no_form_and_a_forged_post_changes_nothing(
    base_url: str, sign_in: SignIn, journey: Journey, api: httpx.AsyncClient
) -> None:
    before = await get(api, journey.pid)
    assert before["waiting_on"] == ["responsible_party"], "the journey stops at risk assessment"
    page = await sign_in("t-responsible-other")
    await page.goto(parcel_url(base_url, journey))
    await expect(page.locator("h1")).to_contain_text("原北京焦化厂")
    assert await page.locator("form.action-form").count() == 0
    await expect(page.locator("#documents-h + p")).to_contain_text("无权查阅")
    forged = {
        "csrf_token": await csrf_of(page),
        "acceptable": "false",
        "recommendation": "remediation",
        "targets[0].item": TARGETS[0]["item"],
        "targets[0].target_mg_kg": str(TARGETS[0]["target_mg_kg"]),
        "upload.risk_assessment_report": {
            "name": "forged.pdf",
            "mimeType": "application/pdf",
            "buffer": pdf(f"forged {journey.pid}"),
        },
    }
    url = f"{parcel_url(base_url, journey)}/actions/risk_assessment_report"
    refused = await page.request.post(url, multipart=forged, max_redirects=0)
    assert refused.status == 403
    assert "WrongParty" in await refused.text()
    assert (await page.request.get(f"{base_url}/ui/parcels/new")).status == 403  # not an agency
    anonymous = await page.context.browser.new_context()  # type: ignore[union-attr]
    signed_out = await anonymous.request.post(url, multipart=forged, max_redirects=0)
    await anonymous.close()
    assert signed_out.status == 401
    # and without the CSRF token, even the polluter itself is refused
    own = await sign_in("t-responsible")
    no_csrf = {k: v for k, v in forged.items() if k != "csrf_token"}
    refused = await own.request.post(url, multipart=no_csrf, max_redirects=0)
    assert refused.status == 403
    assert "CsrfRefused" in await refused.text()
    after = await get(api, journey.pid)
    assert after["actions"] == before["actions"] and after["stage"] == "risk_assessment"
    listed = await api.get(f"/parcels/{journey.pid}/documents", headers=auth("auditor"))
    assert "forged.pdf" not in listed.text


async def test_a_double_submit_applies_once(
    base_url: str, sign_in: SignIn, journey: Journey, api: httpx.AsyncClient
) -> None:
    page = await sign_in("t-responsible")
    await page.goto(parcel_url(base_url, journey))
    form = page.locator('form.action-form[data-action="risk_assessment_report"]')
    await expect(form).to_have_count(1)
    key = await form.locator("input[name=idempotency_key]").get_attribute("value")
    fields = {
        "csrf_token": await csrf_of(page),
        "idempotency_key": key,
        "visit": await form.locator("input[name=visit]").get_attribute("value"),
        "recommendation": "remediation",
        **{
            f"targets[{i}].{name}": str(target[name])
            for i, target in enumerate(TARGETS)
            for name in ("item", "target_mg_kg")
        },
        "upload.risk_assessment_report": {
            "name": "风险评估报告.pdf",
            "mimeType": "application/pdf",
            "buffer": pdf(f"assessment {journey.pid}"),
        },
    }
    url = f"{parcel_url(base_url, journey)}/actions/risk_assessment_report"
    first = await page.request.post(url, multipart=fields, max_redirects=0)
    second = await page.request.post(url, multipart=fields, max_redirects=0)
    assert (first.status, second.status) == (303, 303), await second.text()
    assert first.headers["location"] == second.headers["location"]
    parcel = await get(api, journey.pid)
    assert [a["action"] for a in parcel["actions"]].count("risk_assessment_report") == 1
    await page.goto(base_url + first.headers["location"])
    await expect(page.locator(".flash")).to_contain_text("提交风险评估报告")


async def test_auditor_prints_the_trail_and_ops_open_the_engine(
    base_url: str, sign_in: SignIn, journey: Journey, settings
) -> None:
    auditor = await sign_in("t-auditor")
    await auditor.goto(parcel_url(base_url, journey))
    assert await auditor.locator("form.action-form").count() == 0
    await auditor.locator('a[data-link="trail"]').click()
    await auditor.wait_for_url(re.compile(r"/trail$"))
    await expect(auditor.locator("h1")).to_contain_text("原北京焦化厂")
    await expect(auditor.locator("body")).to_contain_text("closure_screening")
    ops = await sign_in("t-ops")
    await ops.goto(parcel_url(base_url, journey))
    assert await ops.locator('a[data-link="trail"]').count() == 0
    link = await ops.locator('a[data-link="temporal"]').get_attribute("href")
    assert link == f"{settings.ui_url}/namespaces/default/workflows/parcel-{journey.pid}"
    refused = await ops.request.get(f"{parcel_url(base_url, journey)}/trail")
    assert refused.status == 403


async def test_english_by_accept_language_and_by_the_toggle(
    base_url: str, sign_in: SignIn, journey: Journey
) -> None:
    page = await sign_in("t-cityepb", button="Sign in", locale="en-GB")
    await expect(page.locator("h1")).to_have_text("My inbox")
    await page.goto(parcel_url(base_url, journey))
    await expect(page.locator('svg.procedure [data-stage="filing"] text.name')).to_have_text(
        "Investigation review"
    )
    await expect(page.locator("footer")).to_contain_text("Asia/Shanghai")
    await expect(page.locator('tr[data-rule="R1"]')).to_contain_text(
        "the district EPB opened a suspected-contaminated-parcel file"
    )  # English pages show the explanation as recorded
    await page.get_by_role("link", name="中文").click()
    await expect(page.locator('svg.procedure [data-stage="filing"] text.name')).to_have_text(
        "调查报告评审"
    )
    await page.goto(f"{base_url}/ui/inbox")  # the choice stays (a cookie)
    await expect(page.locator("h1")).to_have_text("我的待办")
    assert json.loads(await page.locator("meta[name=htmx-config]").get_attribute("content"))
