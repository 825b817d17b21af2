"""The bare baseline takes the parcel's shape from its history: activities, timers and
search-attribute upserts per segment between action updates (bench/drive.py)."""

from __future__ import annotations

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from bench.drive import shape_of

E = EventType


def accepted(name: str) -> HistoryEvent:
    event = HistoryEvent(event_type=E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name = name
    return event


def of(kind: int) -> HistoryEvent:
    return HistoryEvent(event_type=kind)


HISTORY = WorkflowHistory(
    "parcel-P1",
    [
        accepted("started"),
        of(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        of(E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
        of(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        of(E.EVENT_TYPE_TIMER_STARTED),
        accepted("investigation_report"),
        of(E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES),
        of(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
        accepted("release"),
        of(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED),
    ],
)


def test_the_shape_counts_upserts_with_activities_and_timers():
    shape = shape_of(HISTORY)
    assert shape.segments == [2, 1, 1]
    assert shape.timers == [1, 0, 0]
    assert shape.upserts == [1, 1, 0]


def test_the_earlier_baseline_leaves_the_upserts_out(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("BENCH_BARE_UPSERTS", "0")
    assert shape_of(HISTORY).upserts == []
