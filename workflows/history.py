"""A parcel's history: every run of its workflow id, as one canonical document.

History format. A parcel's history is `{"events": [...]}`, the shape
`temporal workflow show --output json` prints: the proto3 JSON mapping of
`temporal.api.history.v1.History` (camelCase fields, enum names, 64-bit integers as
strings, payload bytes as base64). When a workflow id has several runs (a reset, say),
their events follow one another oldest run first; each run begins with its own event 1,
which is how they are told apart again.

Hash. `history_sha256` is the SHA-256 of the history's canonical bytes:
    json.dumps(H, ensure_ascii=False, sort_keys=True, indent=2) + "\\n", UTF-8 encoded,
where H is the history normalised through the protobuf schema (parsed into
`History` and printed back with `MessageToDict`). `landflow audit export` and
`GET /parcels/{id}/history` write exactly these bytes, so `sha256sum parcel.json`
prints the hash a trail shows; a file from the Temporal CLI (other indentation,
same events) hashes to the same value once loaded.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import WorkflowTaskFailedCause
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from landflow.facts import PARCEL_ID_PATTERN
from landflow.messages import workflow_id

HASH_DEFINITION = (
    "SHA-256 of json.dumps(history, ensure_ascii=False, sort_keys=True, indent=2) + '\\n' "
    "in UTF-8, history = {'events': [...]} in the proto3 JSON form of "
    "`temporal workflow show --output json`, all runs oldest first"
)


def is_parcel_id(value: str) -> bool:
    """Safe to put in a visibility query and a workflow id."""
    return len(value) <= 64 and re.fullmatch(PARCEL_ID_PATTERN, value) is not None


class HistoryFormatError(ValueError):
    """The file or body is not a Temporal history."""


def decode(payloads: Payloads | Payload) -> Any:
    """The first payload as plain JSON values (dicts, lists, ...), or None."""
    payload = payloads if isinstance(payloads, Payload) else next(iter(payloads.payloads), None)
    if payload is None:
        return None
    try:
        return pydantic_data_converter.payload_converter.from_payload(payload)
    except Exception:  # an encoding this build cannot read: say so rather than guess
        return {"undecodable": payload.metadata.get("encoding", b"").decode(errors="replace")}


def at(event: HistoryEvent) -> datetime:
    return event.event_time.ToDatetime(tzinfo=UTC)


# --- the history and its canonical bytes -----------------------------------------------


@dataclass(frozen=True)
class ParcelHistory:
    events: Sequence[HistoryEvent]

    @classmethod
    def from_json(cls, data: str | bytes | dict[str, Any]) -> ParcelHistory:
        try:
            parsed = json.loads(data) if isinstance(data, str | bytes) else data
            if not isinstance(parsed, dict) or not isinstance(parsed.get("events"), list):
                raise HistoryFormatError('expected a JSON object {"events": [...]}')
            events = WorkflowHistory.from_json("", parsed).events
        except HistoryFormatError:
            raise
        except (ValueError, TypeError, KeyError, RecursionError, json_format.ParseError) as exc:
            raise HistoryFormatError(f"not a Temporal history: {exc}") from exc
        if not events:
            raise HistoryFormatError("the history has no events")
        if not events[0].HasField("workflow_execution_started_event_attributes"):
            raise HistoryFormatError("the first event is not WorkflowExecutionStarted")
        return cls(list(events))

    def to_dict(self) -> dict[str, Any]:
        return json_format.MessageToDict(History(events=self.events))

    def canonical(self) -> bytes:
        """The bytes the hash is taken over (see the module docstring)."""
        text = json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, indent=2)
        return (text + "\n").encode("utf-8")

    def sha256(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    def runs(self) -> list[list[HistoryEvent]]:
        """The events of each run, oldest run first (every run starts at event 1)."""
        runs: list[list[HistoryEvent]] = []
        for event in self.events:
            if event.event_id == 1 or not runs:
                runs.append([])
            runs[-1].append(event)
        return runs

    def workflow_id(self) -> str:
        """parcel-<id>, from the facts the workflow was started with."""
        facts = start_facts(self.events[0])
        if isinstance(facts.get("parcel_id"), str):
            return workflow_id(facts["parcel_id"])
        raise HistoryFormatError("the start event carries no parcel facts with a parcel_id")


def start_facts(event: HistoryEvent) -> dict[str, Any]:
    """The parcel facts a run started with: the first procedure took the facts as its
    input, the law's chain takes `{"facts": ...}` (also when it continues as new)."""
    value = decode(event.workflow_execution_started_event_attributes.input)
    if isinstance(value, dict) and isinstance(value.get("facts"), dict):
        return value["facts"]
    return value if isinstance(value, dict) else {}


def _resets(events: Sequence[HistoryEvent]) -> list[HistoryEvent]:
    """The reset markers in a run: the last one names the run itself (a reset run copies
    the events of the run it was reset from, earlier markers included)."""
    reset = WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW
    return [
        e
        for e in events
        if e.HasField("workflow_task_failed_event_attributes")
        and e.workflow_task_failed_event_attributes.cause == reset
    ]


def run_id_of(events: Sequence[HistoryEvent]) -> str:
    resets = _resets(events)
    if resets:
        return resets[-1].workflow_task_failed_event_attributes.new_run_id
    return events[0].workflow_execution_started_event_attributes.original_execution_run_id


def _began(events: Sequence[HistoryEvent]) -> datetime:
    """When the run came to be: its start, or the reset that made it."""
    resets = _resets(events)
    return at(resets[-1] if resets else events[0])


def _earlier_runs(events: Sequence[HistoryEvent]) -> set[str]:
    """Runs this one came from (continue-as-new, reset), read from its own events."""
    started = events[0].workflow_execution_started_event_attributes
    earlier = {started.continued_execution_run_id, started.first_execution_run_id}
    earlier |= {e.workflow_task_failed_event_attributes.base_run_id for e in _resets(events)}
    return earlier - {""}


async def fetch_history(client: Client, parcel_id: str) -> ParcelHistory:
    """Every run of parcel-<id>, oldest first. Raises RPCError NOT_FOUND for no such parcel.

    Runs are found both in visibility and by following each run back to the runs it
    came from, so a run is not missed while visibility lags behind a reset."""
    wid = workflow_id(parcel_id)
    pending = {(await client.get_workflow_handle(wid).describe()).run_id}
    try:
        async for execution in client.list_workflows(f'WorkflowId = "{wid}"'):
            pending.add(execution.run_id)
    except RPCError as exc:
        if exc.status != RPCStatusCode.UNIMPLEMENTED:  # a server without visibility
            raise
    runs: dict[str, list[HistoryEvent]] = {}
    while pending:
        run_id = pending.pop()
        history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
        runs[run_id] = list(history.events)
        pending |= _earlier_runs(runs[run_id]) - set(runs)
    ordered = sorted((events for events in runs.values() if events), key=_began)
    return ParcelHistory([event for events in ordered for event in events])
