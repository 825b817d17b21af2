"""The gate, without a server: who may act on which open task, in which order of checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.exceptions import ApplicationError

from landflow.facts import Party
from landflow.messages import ActionRequest, Actor
from landflow.procedure import Owner
from landflow.settings import PACKAGE_DIR
from landflow.state import Assignee, KeyUse, ParcelState, Parties, Task
from landflow.vocabulary import Role, Stage, Step
from rules.policy_file import load_policy
from workflows.gate import check, next_actions

NOW = datetime(2027, 1, 1, tzinfo=UTC)
POLICY = load_policy(PACKAGE_DIR / "policy.yaml")
POLLUTER = Party(id="POLLUTER1", name="某厂")
CONTRACTOR = Party(id="CONTRACT1", name="某修复公司")


def task(step: Step, stage: Stage, *assignees: Assignee, visit: int = 3) -> Task:
    return Task(
        visit=visit,
        step=step,
        stage=stage,
        opened_at=NOW,
        deadline=NOW + timedelta(days=30),
        assignees=list(assignees),
    )


def parcel(*tasks: Task, **changes) -> ParcelState:
    state = ParcelState(
        parcel_id="P",
        procedure="ParcelWorkflowV2",
        run_id="r",
        facts={"current_use": "industrial"},
        district="朝阳区",
        tasks=list(tasks),
    )
    return state.model_copy(update=changes)


def request(body: dict | None = None, **changes) -> ActionRequest:
    return ActionRequest(actor=Actor(role="city_epb"), body=body or {}, issued_at=NOW).model_copy(
        update=changes
    )


def refusal(state: ParcelState, actor: Actor, action: str, req: ActionRequest | None = None) -> str:
    with pytest.raises(ApplicationError) as refused:
        check(state, POLICY, actor, action, req or request(), NOW)
    return refused.value.type or ""


REVIEW = task(
    Step.filing_review,
    Stage.filing,
    Assignee(owner=Owner.city_epb, role=Role.city_epb),
    Assignee(owner=Owner.planning_land, role=Role.planning_land),
)
CITY, PLANNING = Actor(role="city_epb"), Actor(role="planning_land")


def test_a_joint_review_takes_either_bureau_first():
    state = parcel(REVIEW)
    for actor in (CITY, PLANNING):
        claim = check(state, POLICY, actor, "filing_review", request({"decision": "accepted"}), NOW)
        assert claim.task.visit == 3 and claim.task.assignees[claim.assignee].role == actor.role
    actions = {(a.action.value, a.role.value, a.visit) for a in next_actions(state)}
    assert actions == {("filing_review", "city_epb", 3), ("filing_review", "planning_land", 3)}


def test_checks_run_in_order_role_then_step_then_body():
    state = parcel(REVIEW)
    public = Actor(role="public")
    bad_body = request({"decision": "maybe"})
    assert refusal(state, public, "filing_review", bad_body) == "WrongRole"
    assert refusal(parcel(), CITY, "filing_review", bad_body) == "WrongStage"
    assert refusal(state, CITY, "filing_review", bad_body) == "InvalidBody"
    assert refusal(state, CITY, "no_such_action") == "UnknownAction"
    assert (
        refusal(state.model_copy(update={"status": "released"}), CITY, "filing_review")
        == "ParcelClosed"
    )


def test_a_visit_that_is_not_open_is_refused():
    state = parcel(REVIEW)
    assert (
        refusal(state, CITY, "filing_review", request({"decision": "accepted"}, visit=2))
        == "StaleVisit"
    )
    assert check(
        state, POLICY, CITY, "filing_review", request({"decision": "accepted"}, visit=3), NOW
    )


def test_the_same_key_with_another_body_conflicts_and_with_the_same_body_was_applied():
    first = request({"decision": "accepted"}, key="k1")
    state = parcel(REVIEW, keys={"k1": KeyUse(digest=first.digest(), seq=4)})
    assert refusal(state, CITY, "filing_review", first) == "AlreadyApplied"
    assert (
        refusal(state, CITY, "filing_review", request({"decision": "returned"}, key="k1"))
        == "IdempotencyConflict"
    )


def _responsible_task() -> ParcelState:
    remediation = task(
        Step.remediation_plan,
        Stage.remediation,
        Assignee(owner=Owner.responsible, role=Role.responsible_party, party=POLLUTER.id),
    )
    parties = Parties(responsible=POLLUTER, responsible_role=Role.responsible_party)
    return parcel(remediation, parties=parties, stage=Stage.remediation)


def test_a_company_acts_only_for_the_parcel_it_is_bound_to():
    state = _responsible_task()
    other = Actor(role="responsible_party", party="OTHER1")
    assert refusal(state, other, "remediation_plan") == "WrongParty"
    assert refusal(state, Actor(role="responsible_party"), "remediation_plan") == "WrongParty"
    own = Actor(role="responsible_party", party=POLLUTER.id)
    body = {"plan": "p", "contractor": CONTRACTOR.model_dump(), "notice_board": True}
    assert (
        refusal(state, own, "remediation_plan", request(body)) == "InvalidBody"
    )  # no plan document
    from landflow.documents import CitedDocument

    plan = CitedDocument(document_id="doc_" + "0" * 24, kind="remediation_plan", sha256="0" * 64)
    assert check(state, POLICY, own, "remediation_plan", request(body, documents=[plan]), NOW)


def test_a_district_role_acts_only_in_its_district():
    screening = task(
        Step.closure_screening,
        Stage.closure_screening,
        Assignee(owner=Owner.district_epb, role=Role.district_epb, district="朝阳区"),
    )
    state = parcel(screening)
    assert (
        refusal(state, Actor(role="district_epb", district="海淀区"), "closure_screening")
        == "WrongDistrict"
    )
    assert check(
        state,
        POLICY,
        Actor(role="district_epb", district="朝阳区"),
        "closure_screening",
        request({"result": "cleared"}),
        NOW,
    )


def test_the_evaluator_must_be_another_firm_than_the_contractor():
    commission = task(
        Step.commission_evaluator,
        Stage.evaluation,
        Assignee(owner=Owner.responsible, role=Role.responsible_party, party=POLLUTER.id),
    )
    parties = Parties(
        responsible=POLLUTER, responsible_role=Role.responsible_party, contractor=CONTRACTOR
    )
    state = parcel(commission, parties=parties)
    own = Actor(role="responsible_party", party=POLLUTER.id)
    with pytest.raises(ApplicationError) as refused:
        check(
            state,
            POLICY,
            own,
            "commission_evaluator",
            request({"party": CONTRACTOR.model_dump()}),
            NOW,
        )
    assert refused.value.details[0][0]["field"] == "party.id"


def test_a_soil_transport_leaves_the_parcels_district_in_the_future():
    works = task(
        Step.works,
        Stage.remediation,
        Assignee(owner=Owner.responsible, role=Role.responsible_party, party=POLLUTER.id),
    )
    state = parcel(
        works, parties=Parties(responsible=POLLUTER, responsible_role=Role.responsible_party)
    )
    own = Actor(role="responsible_party", party=POLLUTER.id)
    body = {
        "origin_district": "海淀区",
        "destination_district": "纽约区",
        "time": "2026-12-31T00:00:00+08:00",
        "mode": "road",
        "route": "r",
        "quantity_m3": 1,
        "destination": "d",
        "disposal": "x",
    }
    with pytest.raises(ApplicationError) as refused:
        check(state, POLICY, own, "soil_transport", request(body), NOW)
    assert {f["field"] for f in refused.value.details[0]} >= {
        "origin_district",
        "destination_district",
        "time",
    }


def test_a_body_over_its_limit_is_too_large_and_the_history_budget_is_kept():
    state = parcel(REVIEW)
    assert (
        refusal(state, CITY, "filing_review", request({"decision": "accepted"}, size=10**6))
        == "TooLarge"
    )
    with pytest.raises(ApplicationError) as refused:
        full = POLICY.history.max_run_bytes
        check(
            state,
            POLICY,
            CITY,
            "filing_review",
            request({"decision": "accepted"}, size=100),
            NOW,
            history_bytes=full,
        )
    assert refused.value.type == "HistoryBudget"


def test_an_owner_the_rules_have_not_named_yet_makes_a_possible_caller_early_not_out_of_role():
    """Right after registration the investigator (R2) is not decided: the reserve agency
    sending its report is early (409), the public still out of role (403)."""
    state = parcel()  # no open task, no investigator
    report = request({"samples": []})
    assert refusal(state, Actor(role="reserve_agency"), "investigation_report", report) == (
        "WrongStage"
    )
    assert refusal(state, Actor(role="public"), "investigation_report", report) == "WrongRole"


def test_an_open_side_task_makes_its_assignee_owner_of_its_own_action_only():
    """The origin EPB owes the transport acknowledgement; that does not make it an owner
    of the release (403, not 409 with the step named)."""
    ack = task(
        Step.transport_acknowledgement,
        Stage.remediation,
        Assignee(owner=Owner.transport_epbs, role=Role.district_epb, district="海淀区"),
    )
    state = parcel(ack)
    epb = Actor(role="district_epb", district="海淀区")
    assert refusal(state, epb, "release") == "WrongRole"
    assert refusal(state, epb, "closure_screening") == "WrongDistrict"


def test_a_key_reused_with_another_body_conflicts_after_the_step_has_moved_on():
    """The key's first use closed the screening; its reuse with another body is a conflict
    (409 IdempotencyConflict), not a step that is no longer open (WrongStage)."""
    depb = Actor(role="district_epb", district="朝阳区")
    first = request({"result": "suspected"}, key="k1", actor=depb)
    moved_on = parcel(keys={"k1": KeyUse(digest=first.digest(), seq=1)})
    again = request({"result": "cleared"}, key="k1", actor=depb)
    assert refusal(moved_on, depb, "closure_screening", again) == "IdempotencyConflict"
    assert refusal(moved_on, depb, "closure_screening", first) == "AlreadyApplied"


def _risk_assessment(r5_outcome: str) -> ParcelState:
    from landflow.decisions import DecisionBrief

    r5 = DecisionBrief(
        id="P/r/R5/1",
        rule="R5",
        version=2,
        row="R5.1" if r5_outcome == "control_or_remediation" else "R5.2",
        outcome=r5_outcome,
        citation="GB 36600 5.3.3",
        explanation="",
        evaluated_at=NOW,
    )
    assessment = task(
        Step.risk_assessment,
        Stage.risk_assessment,
        Assignee(owner=Owner.responsible, role=Role.responsible_party, party=POLLUTER.id),
    )
    parties = Parties(responsible=POLLUTER, responsible_role=Role.responsible_party)
    return parcel(assessment, parties=parties, stage=Stage.risk_assessment, decisions=[r5])


def test_above_intervention_values_a_report_gives_targets_whatever_it_concludes():
    """GB 36600 5.3.3: above intervention values the risk is unacceptable and the parcel is
    listed whatever the report says; without targets no evaluation could ever meet them."""
    from landflow.documents import CitedDocument

    own = Actor(role="responsible_party", party=POLLUTER.id)
    report = CitedDocument(
        document_id="doc_" + "1" * 24, kind="risk_assessment_report", sha256="1" * 64
    )
    acceptable = request({"acceptable": True}, documents=[report])
    with pytest.raises(ApplicationError) as refused:
        check(
            _risk_assessment("control_or_remediation"),
            POLICY,
            own,
            "risk_assessment_report",
            acceptable,
            NOW,
        )
    assert refused.value.type == "InvalidBody"
    assert {f["field"] for f in refused.value.details[0]} == {"targets", "recommendation"}
    # Above screening values only, an acceptable risk needs no targets (Law 61).
    assert check(
        _risk_assessment("assessment_required"),
        POLICY,
        own,
        "risk_assessment_report",
        acceptable,
        NOW,
    )
