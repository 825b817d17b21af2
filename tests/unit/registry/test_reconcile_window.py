"""The periodic reconcile's window reaches back to the last pass that succeeded, so a
worker down for longer than the window still brings ended parcels out of the inboxes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from activities.rebuild import RECONCILED, reconcile_since
from registry import writes
from tests.unit.registry import sqlite_engine

NOW = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from sqlite_engine(tmp_path)


def since(engine: Engine) -> datetime:
    with Session(engine) as session:
        return reconcile_since(session, NOW, 1)


def test_without_an_earlier_pass_the_window_is_the_last_hour(engine: Engine):
    assert since(engine) == NOW - timedelta(hours=1)


def test_after_an_outage_the_window_reaches_back_to_the_last_successful_pass(engine: Engine):
    last = NOW - timedelta(hours=7)  # the worker was down for hours
    with Session(engine) as session:
        writes.set_status(session, key=RECONCILED, value="done", detail=last.isoformat())
    assert since(engine) == last - timedelta(minutes=1)


def test_a_recent_pass_keeps_the_hour(engine: Engine):
    with Session(engine) as session:
        writes.set_status(
            session, key=RECONCILED, value="done", detail=(NOW - timedelta(minutes=5)).isoformat()
        )
    assert since(engine) == NOW - timedelta(hours=1)
