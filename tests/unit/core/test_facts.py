"""Parcel facts: the DOMAIN.md vocabulary, with the checks a registration needs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from landflow import vocabulary
from landflow.facts import Boundary, ParcelFacts, Polluter
from landflow.vocabulary import add_districts, check_district
from tests.helpers import LAND_USER, facts


def test_an_unknown_polluter_needs_no_name_but_a_known_one_does():
    assert Polluter(status="unknown").name is None
    with pytest.raises(ValidationError, match="name is required"):
        Polluter(status="disputed")
    with pytest.raises(ValidationError, match="id"):
        Polluter(status="exists", name="某厂")


def test_districts_are_beijings_and_may_be_extended(monkeypatch: pytest.MonkeyPatch):
    # the table is the process's: later tests (report scopes) must see Beijing's alone
    monkeypatch.setattr(vocabulary, "_districts", dict(vocabulary._districts))
    with pytest.raises(ValidationError, match="unknown district"):
        ParcelFacts.model_validate(facts("P1", district="纽约区"))
    add_districts(["测试区"])
    assert check_district("测试区") == "测试区"


def test_a_held_right_names_its_land_user():
    with pytest.raises(ValidationError, match="land_user"):
        ParcelFacts.model_validate(facts("P1", right_status="held"))
    assert ParcelFacts.model_validate(facts("P1", right_status="held", land_user=LAND_USER))


SQUARE = [[116.0, 39.0], [116.1, 39.0], [116.1, 39.1], [116.0, 39.1], [116.0, 39.0]]


def test_a_boundary_is_closed_and_does_not_cross_itself():
    assert Boundary(type="Polygon", coordinates=[SQUARE])
    with pytest.raises(ValidationError, match="not closed"):
        Boundary(type="Polygon", coordinates=[[*SQUARE[:-1], [116.0, 39.05]]])
    bowtie = [[116.0, 39.0], [116.1, 39.1], [116.1, 39.0], [116.0, 39.1], [116.0, 39.0]]
    with pytest.raises(ValidationError, match="intersects itself"):
        Boundary(type="Polygon", coordinates=[bowtie])
    with pytest.raises(ValidationError, match="outside"):
        Boundary(type="Polygon", coordinates=[[[200.0, 39.0], *SQUARE[1:-1], [200.0, 39.0]]])
    assert Boundary(type="MultiPolygon", coordinates=[[SQUARE]])


def test_submitted_facts_leave_out_defaults_the_agency_did_not_send():
    submitted = ParcelFacts.model_validate(facts("P1")).submitted()
    assert "key_supervised_unit" not in submitted and submitted["name"] == "原北京焦化厂"
