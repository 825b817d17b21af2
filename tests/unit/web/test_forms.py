"""Forms from the action bodies, without a browser: every body renders with labelled
inputs, a filled form comes back as the body the model validates, and the API's error
paths land beside the inputs they name."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest

from api.web import forms, i18n
from api.web.templating import environment
from landflow.bodies import ACTION_BODIES
from landflow.documents import DocumentKind
from landflow.facts import ParcelFacts
from landflow.settings import PACKAGE_DIR
from landflow.vocabulary import Action
from rules.policy_file import load_policy
from tests.helpers import (
    CONTRACTOR,
    DIRTY_SAMPLES,
    EVALUATOR,
    MET_RESULTS,
    OPINION,
    POLLUTER,
    RETURNED,
    TARGETS,
    TRANSPORT,
    facts,
)

# One filled-in body per action: a new action fails `test_every_action_has_an_example`
# until it has one here (and so a form that round-trips).
EXAMPLES: dict[Action, dict[str, Any]] = {
    Action.closure_screening: {"result": "suspected", "raw_materials": "焦煤", "notes": "焦油"},
    Action.investigation_report: {
        "samples": DIRTY_SAMPLES,
        "extent_m2": 50_000,
        "degree": "重度",
        "pollutants": ["苯并[a]芘", "铅"],
        "ph": 6.5,
        "farmland_type": "paddy",
    },
    Action.filing_review: RETURNED,
    Action.risk_assessment_report: {
        "acceptable": False,
        "targets": TARGETS,
        "recommendation": "remediation",
        "summary": "不可接受",
    },
    Action.responsibility_determination: {
        "outcome": "named",
        "polluter": {**POLLUTER, "status": "exists", "is_former_right_holder": True},
        "reasons": "档案",
    },
    Action.risk_assessment_review: {"decision": "accepted", "opinion": OPINION},
    Action.choose_path: {"path": "remediation", "reason": "近期开发"},
    Action.control_measures: {
        "control_zone": "东区",
        "signs_posted": True,
        "notice_published": True,
        "monitoring_plan": "季度",
    },
    Action.monitoring_result: {
        "diffusion_found": True,
        "sampled_on": "2027-03-01",
        "samples": [{"item": "铅", "value_mg_kg": 410.5, "depth_m": 2.0, "sample_id": "M-1"}],
    },
    Action.isolation_measures: {"measures": "止水帷幕", "completed_on": "2027-04-01"},
    Action.risk_control_completed: {"summary": "达标", "completed_on": "2028-01-01"},
    Action.remediation_plan: {
        "plan": "热脱附",
        "contractor": CONTRACTOR,
        "notice_board": True,
        "target": "苯并[a]芘 ≤ 0.55",
    },
    Action.plan_filing_review: {"decision": "returned", "reasons": "缺少二次污染防治措施"},
    Action.soil_transport: TRANSPORT,
    Action.transport_acknowledgement: {"notes": "已签收"},
    Action.secondary_pollution_inspection: {"compliant": False, "findings": "扬尘"},
    Action.works_completed: {"completed_on": "2028-05-01", "summary": "完工"},
    Action.commission_evaluator: {"party": EVALUATOR},
    Action.evaluation: {"met": True, "results": MET_RESULTS, "report": "达到目标"},
    Action.spot_check: {"result": "not_met", "notes": "复测超标"},
    Action.removal_application: {"notes": "申请移出"},
    Action.removal_review: {"decision": "accepted", "reasons": ""},
    Action.release: {"notes": "放行"},
}
POLICY = load_policy(PACKAGE_DIR / "policy.yaml")


class Controls(HTMLParser):
    """The inputs of an HTML fragment and the labels that name them."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str]] = []
        self.labels: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag in ("input", "select", "textarea") and found.get("type") != "hidden":
            self.inputs.append({"tag": tag, **found})
        if tag == "label" and "for" in found:
            self.labels.add(found["for"])


def render_fields(form: forms.Form, values: dict[str, str], placed: forms.Placed) -> str:
    macros = environment().get_template("_fields.html").make_module()
    with i18n.using("zh"):
        return str(macros.fields(form.fields, values, placed, "f-test-"))


def test_every_action_has_an_example() -> None:
    assert set(EXAMPLES) == set(Action)


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_every_form_renders_with_labelled_inputs(action: Action) -> None:
    form = forms.action_form(action, POLICY)
    html = render_fields(form, forms.initial_values(form), forms.Placed())
    parsed = Controls()
    parsed.feed(html)
    outside_templates = re.sub(r"<template>.*?</template>", "", html, flags=re.S)
    visible = Controls()
    visible.feed(outside_templates)
    for control in visible.inputs:
        assert control.get("id") in visible.labels, f"{action}: {control} has no label"
    names = {c.get("name") for c in visible.inputs}
    model = ACTION_BODIES[action]
    for key in model.model_fields:
        if key == "documents":
            continue
        assert any(n == key or n.startswith((f"{key}.", f"{key}[")) for n in names), key


def test_enums_are_selects_bools_checkboxes_and_nested_objects_dotted() -> None:
    review = forms.action_form(Action.filing_review, POLICY)
    decision = review.find("decision")
    assert decision and decision.kind == "select" and decision.choices == ("accepted", "returned")
    opinion = review.find("opinion")
    assert opinion and opinion.kind == "group" and opinion.nullable
    assert [c.name for c in opinion.children] == [
        "opinion.conclusion",
        "opinion.required_revisions",
        "opinion.panel",
        "opinion.date",
    ]
    assert review.find("opinion.date").kind == "date"  # type: ignore[union-attr]
    assessment = forms.action_form(Action.risk_assessment_report, POLICY)
    assert assessment.find("acceptable").kind == "checkbox"  # type: ignore[union-attr]
    targets = assessment.find("targets")
    assert targets and targets.kind == "rows"
    assert [(c.key, c.kind, c.required) for c in targets.children] == [
        ("item", "text", True),
        ("target_mg_kg", "number", True),
    ]
    transport = forms.action_form(Action.soil_transport, POLICY)
    assert transport.find("time").kind == "datetime"  # type: ignore[union-attr]
    assert "大兴区" in transport.find("destination_district").options()  # type: ignore[union-attr]


def test_upload_slots_are_the_kinds_the_policy_requires() -> None:
    report = forms.action_form(Action.investigation_report, POLICY)
    assert [(s.kind, s.required) for s in report.slots] == [
        (DocumentKind.investigation_report, True),
        (DocumentKind.lab_results, False),  # samples may come from a spreadsheet
        (DocumentKind.other, False),
    ]
    assert forms.action_form(Action.choose_path, POLICY).slots == ()  # no `documents`
    assert not forms.action_form(Action.choose_path, POLICY).cites


@pytest.mark.parametrize("action", list(Action), ids=str)
def test_a_filled_form_round_trips_to_the_body_the_model_validates(action: Action) -> None:
    model = ACTION_BODIES[action]
    form = forms.action_form(action, POLICY)
    example = model.model_validate(EXAMPLES[action])
    values = forms.values_from_body(form, example.model_dump(mode="json"))
    body = forms.body_from_form(form, values)
    assert model.model_validate(body) == example
    # and the rendered form shows what was filled in
    html = render_fields(form, values, forms.Placed())
    for name, value in values.items():
        if value and "\n" not in value:
            assert f'name="{name}"' in html, name


def test_facts_round_trip_with_nested_parties_and_a_geojson_boundary() -> None:
    boundary = {
        "type": "Polygon",
        "coordinates": [[[116.5, 39.8], [116.6, 39.8], [116.6, 39.9], [116.5, 39.8]]],
    }
    example = ParcelFacts.model_validate(facts("P-1", boundary=boundary))
    form = forms.facts_form()
    values = forms.values_from_body(form, example.model_dump(mode="json", exclude_none=True))
    assert values["polluter.status"] == "exists" and values["location.lat"] == "39.8865"
    assert ParcelFacts.model_validate(forms.body_from_form(form, values)) == example
    # optional groups left blank are left out (land_user, transferee)
    body = forms.body_from_form(form, values)
    assert "transferee" not in body and "land_user" not in body


def test_blank_inputs_are_left_out_and_rows_renumbered() -> None:
    form = forms.action_form(Action.risk_assessment_report, POLICY)
    values = {
        "acceptable": "",
        "recommendation": "",
        "targets[0].item": "",
        "targets[0].target_mg_kg": "",
        "targets[3].item": "铅",
        "targets[3].target_mg_kg": "400",
        "targets[5].item": "苯并[a]芘",
        "targets[5].target_mg_kg": "abc",
    }
    compacted = forms.compact(form, values)
    assert compacted["targets[0].item"] == "铅" and compacted["targets[1].item"] == "苯并[a]芘"
    body = forms.body_from_form(form, values)
    assert body == {
        "acceptable": False,
        "targets": [
            {"item": "铅", "target_mg_kg": 400.0},
            {"item": "苯并[a]芘", "target_mg_kg": "abc"},  # the model's 422 names it
        ],
    }
    datetime_field = forms.action_form(Action.soil_transport, POLICY)
    parsed = forms.body_from_form(datetime_field, {"time": "2099-03-01T22:00"})
    assert parsed["time"] == "2099-03-01T22:00:00+08:00"  # what a Beijing user meant


def test_errors_land_beside_the_inputs_their_paths_name() -> None:
    form = forms.action_form(Action.risk_assessment_report, POLICY)
    values = forms.compact(
        form, {"targets[0].item": "铅", "targets[1].item": "X", "targets[1].target_mg_kg": "1"}
    )
    problems = [
        {"field": "targets.1.target_mg_kg", "reason": "Input should be greater than 0"},
        {"field": "targets[1].item", "reason": "unknown GB 36600 item 'X'"},  # the gate's
        {"field": "documents", "reason": "cite a document of kind risk_assessment_report"},
        {"field": "body", "reason": "targets are required when the risk is not acceptable"},
        {"field": "targets.1", "reason": "a row-wide problem"},
        {"field": "nonsense.path", "reason": "somewhere else"},
    ]
    placed = forms.place(form, values, problems)
    assert placed.by_name["targets[1].target_mg_kg"] == ["Input should be greater than 0"]
    assert placed.by_name["targets[1].item"] == ["unknown GB 36600 item 'X'"]
    assert placed.by_name["targets[1]"] == ["a row-wide problem"]
    assert placed.by_name["documents"]
    assert placed.general == [
        "targets are required when the risk is not acceptable",
        "nonsense.path: somewhere else",
    ]
    html = render_fields(form, values, placed)
    cell = re.search(r'data-field="targets\[1\]\.item".*?</div>', html, flags=re.S)
    assert cell and 'aria-invalid="true"' in cell.group(0)
    assert "unknown GB 36600 item" in cell.group(0)
    review = forms.action_form(Action.filing_review, POLICY)
    nested = forms.place(review, {}, [{"field": "opinion.date", "reason": "Field required"}])
    assert nested.by_name == {"opinion.date": ["Field required"]}
    with i18n.using("zh"):
        assert i18n.gettext("Field required") == "此项必填"


@pytest.mark.parametrize("locale", i18n.LOCALES)
def test_every_label_and_choice_a_form_shows_is_in_the_catalogs(locale: str) -> None:
    missing = []
    every = [forms.action_form(a, POLICY) for a in Action] + [forms.facts_form()]

    def walk(fields: tuple[forms.FormField, ...]) -> None:
        for f in fields:
            if i18n.term("field", f.key, f.context or None) == f.key.replace("_", " "):
                missing.append(f"field:{f.key}")
            if not f.districts:
                for choice in f.choices:
                    shown = i18n.term("choice", choice, f.key)
                    if shown == choice.replace("_", " ") and f.key != "kind":
                        missing.append(f"choice:{choice}")
            walk(f.children)

    with i18n.using(locale):
        for form in every:
            walk(form.fields)
        for action in Action:
            if i18n.term("action", action) == action.value.replace("_", " "):
                missing.append(f"action:{action}")
    assert not sorted(set(missing)), f"{locale} catalog lacks {sorted(set(missing))}"
