"""The procedure table is complete and consistent: one source for every step."""

from __future__ import annotations

from landflow.bodies import ACTION_BODIES
from landflow.procedure import FLOWS, PROCEDURE, RULE_SEQUENCE, STAGE_ORDER, STEPS, Owner, RulePoint
from landflow.settings import PACKAGE_DIR
from landflow.vocabulary import Action, Role, Stage, Step
from rules.engine import RulesEngine
from rules.policy_file import load_policy


def test_every_step_is_declared_once_with_a_deadline_in_the_policy():
    assert [s.step for s in STEPS] == list(dict.fromkeys(s.step for s in STEPS))
    assert set(PROCEDURE) == set(Step)
    policy = load_policy(PACKAGE_DIR / "policy.yaml")
    assert set(policy.steps) == {s.deadline_key for s in STEPS}


def test_every_action_is_opened_by_some_step_and_has_a_body():
    opened = {a.action for s in STEPS for a in s.answers}
    assert opened == set(Action) == set(ACTION_BODIES)


def test_every_step_cites_its_clause_and_has_a_chinese_title():
    for spec in STEPS:
        assert any(source in spec.clause for source in ("BJ", "Law")), spec.step
        assert spec.title_zh and not spec.title_zh.isascii()


def test_joint_reviews_are_the_city_epb_with_the_planning_bureau():
    joint = {s.step for s in STEPS if s.joint}
    assert joint == {Step.filing_review, Step.risk_assessment_review, Step.removal_review}
    for step in joint:
        assert PROCEDURE[step].owners() == (Owner.city_epb, Owner.planning_land)


def test_only_side_tasks_never_hold_the_procedure():
    assert {s.step for s in STEPS if not s.blocking} == {Step.transport_acknowledgement}
    works = PROCEDURE[Step.works]
    side = {a.action for a in works.answers if not a.ends_step}
    assert side == {Action.soil_transport, Action.secondary_pollution_inspection}
    assert (
        works.answer(Action.remediation_plan, Owner.responsible).only_after == "evaluation_failed"
    )


def test_flows_join_stages_in_the_declared_order_and_every_stage_is_reachable():
    assert STAGE_ORDER[0] == Stage.intake and STAGE_ORDER[-1] == Stage.released
    reachable, frontier = {Stage.intake}, [Stage.intake]
    while frontier:
        stage = frontier.pop()
        for flow in FLOWS:
            if flow.source == stage and flow.target not in reachable:
                reachable.add(flow.target)
                frontier.append(flow.target)
    assert reachable == set(Stage)
    assert all(f.loop for f in FLOWS if STAGE_ORDER.index(f.target) < STAGE_ORDER.index(f.source))


def test_the_rule_sequence_names_only_rules_with_tables():
    tables = set(RulesEngine().tables)
    named = {call.rule for calls in RULE_SEQUENCE.values() for call in calls}
    assert named <= tables and set(RULE_SEQUENCE) == set(RulePoint)
    # every rule point but the intake follows exactly one step (the workflow checks it)
    after = [spec.rules_after for spec in STEPS if spec.rules_after]
    assert sorted(after) == sorted(set(RulePoint) - {RulePoint.intake})


def test_fixed_owners_are_roles_and_parties_are_not():
    """A party owner (the land user) is bound to a company on each parcel, never a role
    any token of that role may take."""
    from landflow.procedure import role_of
    from landflow.vocabulary import PARTY_ROLES

    fixed = {o: role_of(o) for o in Owner}
    assert fixed[Owner.city_epb] == Role.city_epb
    assert fixed[Owner.district_government] == Role.district_government
    assert all(role is None for o, role in fixed.items() if o.value in PARTY_ROLES)
    assert fixed[Owner.land_user] is None and fixed[Owner.investigator] is None
