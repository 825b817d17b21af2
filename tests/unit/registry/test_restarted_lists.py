"""A parcel whose run ended abnormally keeps its list entries (nothing but a review takes
it off a list, Law 66), and a restart that lists it again must not put it on the public
list twice: the latest registration's entry is the one that counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from activities.report import compute_report
from landflow.reports import ReportInput
from landflow.vocabulary import CITY
from registry import queries, writes
from tests.unit.registry import T0, list_change, projection, sqlite_engine

DAY = timedelta(days=1)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine: Engine
    for engine in sqlite_engine(tmp_path):
        with Session(engine) as session:
            yield session


def _on_list(session: Session, name: str = "contaminated") -> list[str]:
    page = queries.list_entries(session, list_name=name)
    assert page.total == len(page.items)
    return [entry.run_id for entry, _ in page.items]


def test_a_restart_listed_again_is_on_the_list_once_and_leaves_it_by_review(session: Session):
    ended = projection("P1", run_id="run-ended", status="timed_out", listed=True)
    writes.apply_projection(session, projection=ended)
    writes.apply_list_change(session, change=list_change("P1", run_id="run-ended"))
    restarted = projection("P1", run_id="run-restarted", started_at=T0 + DAY)
    writes.apply_projection(session, projection=restarted)
    # Restarted, not listed again yet: the ended run's entry stands, on the list and in
    # the profile of the registration that is current now.
    assert _on_list(session) == ["run-ended"]
    entry = queries.list_entry(session, list_name="contaminated", run_id="run-restarted")
    assert entry is not None and entry.run_id == "run-ended"
    assert queries.list_entry(session, list_name="negative", run_id="run-restarted") is None
    # Listed again by the restarted run: once, as that run's entry.
    again = list_change("P1", at=T0 + 2 * DAY, run_id="run-restarted")
    writes.apply_list_change(session, change=again)
    assert _on_list(session) == ["run-restarted"]
    # Removed by review in the restarted run: off the list; the old entry does not return.
    removed = list_change("P1", "leave", at=T0 + 3 * DAY, run_id="run-restarted")
    writes.apply_list_change(session, change=removed)
    assert _on_list(session) == []
    entry = queries.list_entry(session, list_name="contaminated", run_id="run-restarted")
    assert entry is not None and entry.run_id == "run-restarted" and entry.left_at is not None
    # The list's history keeps both entries.
    everything = queries.list_entries(session, list_name="contaminated", current=False)
    assert sorted(e.run_id for e, _ in everything.items) == ["run-ended", "run-restarted"]


def test_other_parcels_and_lists_are_not_superseded(session: Session):
    for pid in ("P1", "P2"):
        writes.apply_projection(session, projection=projection(pid))
        writes.apply_list_change(session, change=list_change(pid))
        writes.apply_list_change(session, change=list_change(pid, list_name="negative"))
    later = list_change("P2", at=T0 + DAY, run_id="run-P2-again")
    writes.apply_list_change(session, change=later)
    assert sorted(_on_list(session)) == ["run-P1", "run-P2-again"]
    assert sorted(_on_list(session, "negative")) == ["run-P1", "run-P2"]


def test_the_annual_report_counts_a_restart_listed_again_once(session: Session):
    """The year's figures read the list as the public does: a parcel that never left the
    list is on it once at year end, and its restart's listing is no new entry."""
    ended = projection("P1", run_id="run-ended", status="timed_out", listed=True)
    writes.apply_projection(session, projection=ended)
    writes.apply_list_change(session, change=list_change("P1", run_id="run-ended"))
    writes.apply_projection(session, projection=projection("P1", run_id="run-restarted"))
    again = list_change("P1", at=T0 + 2 * DAY, run_id="run-restarted")
    writes.apply_list_change(session, change=again)
    request = ReportInput(year=T0.year, scope=CITY, workflow_id="report", generated_at=T0)
    figures = compute_report(session, request=request).lists["contaminated"]
    assert figures.on_list_at_year_end == 1
    assert figures.entered == ["P1"] and figures.left == []
