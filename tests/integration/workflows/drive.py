"""Moves of a parcel on the time-skipping harness, shared by its tests: the actors of the
default facts (tests.helpers.facts: recovered land, the polluter exists) and the usual
way to each stage."""

from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle

from landflow.messages import ActionOutcome
from tests.helpers import CONTRACTOR, EVALUATOR, MET_RESULTS, POLLUTER, TARGETS
from tests.integration.workflows.conftest import Harness

RESERVE = {"role": "reserve_agency", "subject": "储备中心"}
RESPONSIBLE = {"role": "responsible_party", "party": POLLUTER["id"]}
EVALUATOR_FIRM = {"role": "third_party_evaluator", "party": EVALUATOR["id"]}
GOVERNMENT = {"role": "district_government", "district": "朝阳区"}
DISTRICT_EPB = {"role": "district_epb", "district": "朝阳区"}
BUREAUS = (
    {"role": "city_epb", "subject": "市生态环境局"},
    {"role": "planning_land", "subject": "市规划和自然资源委"},
)
ACCEPTED = {"decision": "accepted"}
PLAN = {"plan": "热脱附", "contractor": CONTRACTOR, "notice_board": True}
MEASURES = {"control_zone": "东区", "signs_posted": True, "notice_published": True}


async def review(harness: Harness, handle: WorkflowHandle, action: str) -> None:
    """A joint review both bureaus accept."""
    for bureau in BUREAUS:
        await harness.act(handle, action, bureau, ACCEPTED)


async def to_listed(
    harness: Harness, handle: WorkflowHandle, recommendation: str = "remediation"
) -> None:
    """From the first step of a parcel needing no closure screening to `choose_path`:
    over intervention values, assessed unacceptable with targets, listed."""
    samples = harness.samples([{"item": "苯并[a]芘", "value_mg_kg": 8.5}])
    await harness.act(
        handle,
        "investigation_report",
        RESERVE,
        {"extent_m2": 1, "degree": "x"},
        samples=samples,
        documents=["investigation_report"],
    )
    await review(harness, handle, "filing_review")
    assessment = {"acceptable": False, "targets": TARGETS, "recommendation": recommendation}
    await harness.act(
        handle,
        "risk_assessment_report",
        RESPONSIBLE,
        assessment,
        documents=["risk_assessment_report"],
    )
    await review(harness, handle, "risk_assessment_review")


async def to_works(harness: Harness, handle: WorkflowHandle) -> None:
    await to_listed(harness, handle)
    await harness.act(handle, "choose_path", GOVERNMENT, {"path": "remediation"})
    await harness.act(handle, "remediation_plan", RESPONSIBLE, PLAN, documents=["remediation_plan"])
    await harness.act(handle, "plan_filing_review", DISTRICT_EPB, {"decision": "acknowledged"})


async def to_monitoring(harness: Harness, handle: WorkflowHandle) -> None:
    await to_listed(harness, handle, "risk_control")
    await harness.act(handle, "choose_path", GOVERNMENT, {"path": "risk_control"})
    await harness.act(handle, "control_measures", GOVERNMENT, MEASURES)


async def evaluated(
    harness: Harness, handle: WorkflowHandle, results: list[dict[str, Any]] = MET_RESULTS
) -> Any:
    """From works completed (or control completed) through the evaluator's report."""
    await harness.act(handle, "commission_evaluator", RESPONSIBLE, {"party": EVALUATOR})
    return await harness.act(
        handle,
        "evaluation",
        EVALUATOR_FIRM,
        {"met": True, "results": results},
        documents=["effect_evaluation_report"],
    )


async def owner(harness: Harness, handle: WorkflowHandle) -> dict[str, Any]:
    """The actor the parcel waits on: the first owner of its blocking step yet to answer
    (whoever the rules, the facts or an earlier action bound to the parcel)."""
    task = (await harness.state(handle)).blocking()
    assert task is not None, "the parcel waits on no step"
    who = next(a for a in task.assignees if a.owes and not a.answered)
    return {"role": who.role.value, "district": who.district, "party": who.party}


async def by_owner(
    harness: Harness, handle: WorkflowHandle, action: str, body: dict[str, Any], **given: Any
) -> ActionOutcome:
    """`action` by whoever the parcel waits on (`owner`); `given`: samples, documents."""
    return await harness.act(handle, action, await owner(harness, handle), body, **given)
