"""Replay: does today's workflow code still produce what a history recorded?

An exported history may be of a running parcel: it then ends after an update or an
activity event instead of a completed workflow task, and the core replayer would panic
and never return (ENGINE-NOTES.md). Each run is cut after its last
`WorkflowTaskCompleted` (what the workflow had decided so far), and every replay has a
time limit, so any history, open or closed, gets a verdict.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from collections.abc import Sequence
from functools import cache

from pydantic import BaseModel
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer

from workflows import bytecode
from workflows.history import ParcelHistory, run_id_of
from workflows.legacy.parcel import ParcelWorkflow as LegacyParcelWorkflow
from workflows.parcel import ParcelWorkflow

PARCEL_WORKFLOW_CLASSES: tuple[type, ...] = (ParcelWorkflow, LegacyParcelWorkflow)
REPLAY_TIMEOUT_S = 60.0  # per run; a run of 10,000 events replays in a few seconds


class ReplayVerdict(BaseModel):
    deterministic: bool
    error: str | None = None
    event_id: int | None = None
    run_id: str | None = None


# Where the core SDK names the event a replay stumbled on, in the words it uses.
_EVENT_ID_PATTERNS = (
    re.compile(r"HistoryEvent\(id: (\d+)"),
    re.compile(r"HistoryEvent \{ event_id: (\d+)"),
    re.compile(r"event id: (\d+)"),
)
_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


@cache
def _quiet_runtime() -> Runtime:
    """The core logs every failed replay as a WARN; the verdict already says it."""
    logging = LoggingConfig(filter=TelemetryFilter(core_level="ERROR", other_level="ERROR"))
    return Runtime(telemetry=TelemetryConfig(logging=logging))


class HistoryReplayer:
    """Replays parcel histories against workflow code (both procedures unless told otherwise)."""

    def __init__(self, workflows: Sequence[type] = PARCEL_WORKFLOW_CLASSES) -> None:
        bytecode.compile_modules()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        self._workflows = list(workflows)
        self._by_type = {
            defn.name: cls
            for cls in self._workflows
            if (defn := workflow._Definition.from_class(cls)) and defn.name
        }
        self._replayers: dict[str | None, Replayer] = {}

    def _replayer(self, events: Sequence[HistoryEvent]) -> Replayer:
        """A replayer of the history's own workflow type only: each replay prepares every
        workflow it knows in the sandbox, and a parcel has one type."""
        first = events[0]
        name = first.workflow_execution_started_event_attributes.workflow_type.name or None
        key = name if name in self._by_type else None
        if key not in self._replayers:
            self._replayers[key] = Replayer(
                workflows=[self._by_type[key]] if key else self._workflows,
                data_converter=pydantic_data_converter,
                workflow_task_executor=self._pool,
                runtime=_quiet_runtime(),
            )
        return self._replayers[key]

    def close(self) -> None:
        self._pool.shutdown(wait=False)

    def __enter__(self) -> HistoryReplayer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    async def replay(self, history: ParcelHistory, wid: str | None = None) -> ReplayVerdict:
        """Deterministic when every run replays; otherwise the first failing run and event."""
        wid = wid or history.workflow_id()
        for run in history.runs():
            failure = await self._failure(wid, run)
            if failure is None:
                continue
            event_id = _named_event(failure) or await self._first_failing_event(wid, run)
            run_id = run_id_of(run)
            return ReplayVerdict(
                deterministic=False, error=_reason(failure), event_id=event_id, run_id=run_id
            )
        return ReplayVerdict(deterministic=True)

    async def _failure(self, wid: str, events: Sequence[HistoryEvent]) -> str | None:
        events = decided_so_far(events)
        if not events:
            return None  # nothing decided yet: nothing to disagree with
        try:
            result = await asyncio.wait_for(
                self._replayer(events).replay_workflow(
                    WorkflowHistory(wid, events), raise_on_replay_failure=False
                ),
                REPLAY_TIMEOUT_S,
            )
        except TimeoutError:
            return f"the replay did not finish within {REPLAY_TIMEOUT_S:g}s"
        except Exception as exc:  # a history the core refuses outright is a failure too
            return f"{type(exc).__name__}: {exc}"
        return None if result.replay_failure is None else str(result.replay_failure)

    async def _first_failing_event(self, wid: str, events: Sequence[HistoryEvent]) -> int:
        """Bisect on prefixes: the shortest one that fails ends with the culprit."""
        low, high = 1, len(events)  # the prefix of length `high` fails
        while low < high:
            middle = (low + high) // 2
            if await self._failure(wid, events[:middle]) is None:
                low = middle + 1
            else:
                high = middle
        return events[high - 1].event_id


def _named_event(failure: str) -> int | None:
    for pattern in _EVENT_ID_PATTERNS:
        found = pattern.search(failure)
        if found:
            return int(found.group(1))
    return None


def _reason(failure: str) -> str:
    """The core's own sentence, without the Rust debug wrapping around it."""
    found = _CORE_MESSAGE.search(failure)
    return found.group(1).replace('\\"', '"') if found else failure


def decided_so_far(events: Sequence[HistoryEvent]) -> Sequence[HistoryEvent]:
    """A run up to its last completed workflow task, or closed: what replay can judge."""
    closing = {
        EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    }
    last = max((i for i, e in enumerate(events) if e.event_type in closing), default=-1)
    if last >= 0 and events[last].event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        return events  # a closed run: whole
    return events[: last + 1]


async def replay(
    history: ParcelHistory,
    wid: str | None = None,
    workflows: Sequence[type] = PARCEL_WORKFLOW_CLASSES,
) -> ReplayVerdict:
    with HistoryReplayer(workflows) as replayer:
        return await replayer.replay(history, wid)
