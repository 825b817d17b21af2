"""What an auditor needs years later: a parcel's history, proof that today's code replays
it, and a decision trail read from that history alone (never from the registry).

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

import concurrent.futures
import hashlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from google.protobuf import json_format
from pydantic import BaseModel, Field
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Replayer

from landflow.contracts import PARCEL_ID_PATTERN
from landflow.temporal import workflow_id
from workflows.parcel import ParcelWorkflow

WORKFLOW_TYPE = "ParcelWorkflow"
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


def _decode(payloads: Payloads | Payload) -> Any:
    """The first payload as plain JSON values (dicts, lists, ...), or None."""
    payload = payloads if isinstance(payloads, Payload) else next(iter(payloads.payloads), None)
    if payload is None:
        return None
    try:
        return pydantic_data_converter.payload_converter.from_payload(payload)
    except Exception:  # an encoding this build cannot read: say so rather than guess
        return {"undecodable": payload.metadata.get("encoding", b"").decode(errors="replace")}


def _at(event: HistoryEvent) -> datetime:
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
        except (ValueError, TypeError, json_format.ParseError) as exc:
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
        facts = _decode(self.events[0].workflow_execution_started_event_attributes.input)
        if isinstance(facts, dict) and isinstance(facts.get("parcel_id"), str):
            return workflow_id(facts["parcel_id"])
        raise HistoryFormatError("the start event carries no parcel facts with a parcel_id")


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
    return _at(resets[-1] if resets else events[0])


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
    async for execution in client.list_workflows(f'WorkflowId = "{wid}"'):
        pending.add(execution.run_id)
    runs: dict[str, list[HistoryEvent]] = {}
    while pending:
        run_id = pending.pop()
        history = await client.get_workflow_handle(wid, run_id=run_id).fetch_history()
        runs[run_id] = list(history.events)
        pending |= _earlier_runs(runs[run_id]) - set(runs)
    ordered = sorted((events for events in runs.values() if events), key=_began)
    return ParcelHistory([event for events in ordered for event in events])


# --- replay --------------------------------------------------------------------------


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
    """Replays parcel histories against workflow code (ParcelWorkflow unless told otherwise)."""

    def __init__(self, workflows: Sequence[type] = (ParcelWorkflow,)) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
        self._replayer = Replayer(
            workflows=list(workflows),
            data_converter=pydantic_data_converter,
            workflow_task_executor=self._pool,
            runtime=_quiet_runtime(),
        )

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
        try:
            result = await self._replayer.replay_workflow(
                WorkflowHistory(wid, events), raise_on_replay_failure=False
            )
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


async def replay(
    history: ParcelHistory, wid: str | None = None, workflows: Sequence[type] = (ParcelWorkflow,)
) -> ReplayVerdict:
    with HistoryReplayer(workflows) as replayer:
        return await replayer.replay(history, wid)


# --- the trail -----------------------------------------------------------------------


class StageVisitEntry(BaseModel):
    stage: str
    entered: datetime | None = None
    left: datetime | None = None
    by: str | None = None  # role:subject whose action moved the parcel on, or "system"


class ActionEntry(BaseModel):
    event_id: int
    run: int
    at: datetime
    action: str
    role: str | None = None
    subject: str | None = None
    district: str | None = None
    payload: Any = None
    status: str = "pending"  # completed | failed | pending
    stage_after: str | None = None
    waiting_on_after: str | None = None
    error: str | None = None


class DecisionEntry(BaseModel):
    event_id: int  # the ActivityTaskScheduled event of the `decide` call
    run: int
    at: datetime
    status: str = "pending"
    decision_id: str | None = None
    rule: str | None = None
    version: int | None = None
    row: str | None = None
    outcome: str | None = None
    citation: str | None = None
    explanation: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)


class NoticeEntry(BaseModel):
    event_id: int
    run: int
    at: datetime
    kind: str  # reminder | escalation
    step: str | None = None
    role: str | None = None
    deadline: str | None = None
    escalate_to: str | None = None


class OverdueEntry(BaseModel):
    event_id: int
    run: int
    at: datetime
    overdue: bool
    stage: str | None = None
    waiting_on: str | None = None


class ListEntry(BaseModel):
    event_id: int
    run: int
    at: datetime
    change: str
    reason: str | None = None


class RunEntry(BaseModel):
    run: int
    run_id: str
    started_at: datetime
    closed_at: datetime | None = None
    status: str
    events: int


class Trail(BaseModel):
    workflow_id: str
    parcel_id: str | None
    name: str | None
    district: str | None
    planned_use: str | None
    facts: dict[str, Any]
    status: str
    stage: str | None
    runs: list[RunEntry]
    stages: list[StageVisitEntry]
    actions: list[ActionEntry]
    decisions: list[DecisionEntry]
    notices: list[NoticeEntry]
    overdue_flags: list[OverdueEntry]
    list_changes: list[ListEntry]
    history_sha256: str
    history_events: int
    hash_definition: str = HASH_DEFINITION


_CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued_as_new",
}
_INTERNAL_UPDATES = frozenset({"started"})  # answers POST /parcels; not an action


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


class _TrailBuilder:
    """One pass over the events, keeping what the trail needs by event type."""

    def __init__(self) -> None:
        self.actions: dict[str, ActionEntry] = {}  # by update id
        self.admitted: dict[str, Any] = {}  # update requests admitted without acceptance yet
        self.decisions: dict[tuple[int, int], DecisionEntry] = {}  # by (run, scheduled id)
        self.notices: list[NoticeEntry] = []
        self.overdue: list[OverdueEntry] = []
        self.lists: list[ListEntry] = []
        self.runs: list[RunEntry] = []
        self.facts: dict[str, Any] = {}
        self.state: dict[str, Any] | None = None  # the latest ParcelState seen
        self.state_event = 0  # position (in the whole history) where it was seen
        self.stage_marks: list[tuple[int, datetime, str]] = []  # Stage attribute upserts
        self.search: dict[str, Any] = {}

    def feed(self, position: int, run: int, event: HistoryEvent) -> None:
        kind = event.WhichOneof("attributes")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(position, run, event, getattr(event, kind))
        if event.event_type in _CLOSED and self.runs:
            self.runs[-1].status = _CLOSED[event.event_type]
            self.runs[-1].closed_at = _at(event)

    def _on_workflow_execution_started_event_attributes(self, pos, run, event, attrs) -> None:
        facts = _decode(attrs.input)
        if isinstance(facts, dict) and not self.facts:
            self.facts = facts
        run_id = attrs.original_execution_run_id
        self.runs.append(
            RunEntry(run=run, run_id=run_id, started_at=_at(event), status="running", events=0)
        )
        self.search = {}
        self._search_attributes(pos, run, event, attrs.search_attributes.indexed_fields)

    def _on_workflow_execution_completed_event_attributes(self, pos, run, event, attrs) -> None:
        self._keep_state(pos, _decode(attrs.result))

    def _on_workflow_task_failed_event_attributes(self, pos, run, event, attrs) -> None:
        if attrs.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW:
            self.runs[-1].run_id, self.runs[-1].started_at = attrs.new_run_id, _at(event)

    def _on_workflow_execution_update_admitted_event_attributes(
        self, pos, run, event, attrs
    ) -> None:
        # Reapplied after a reset: the acceptance that follows refers back to this request.
        self.admitted[attrs.request.meta.update_id] = attrs.request

    def _on_workflow_execution_update_accepted_event_attributes(
        self, pos, run, event, attrs
    ) -> None:
        request = attrs.accepted_request
        if not request.input.name:
            request = self.admitted.get(attrs.protocol_instance_id, request)
        name = request.input.name
        if name in _INTERNAL_UPDATES:
            return
        args = _decode(request.input.args)
        args = args if isinstance(args, dict) else {}
        actor = args.get("actor") if isinstance(args.get("actor"), dict) else {}
        self.actions[request.meta.update_id or attrs.protocol_instance_id] = ActionEntry(
            event_id=event.event_id,
            run=run,
            at=_at(event),
            action=name,
            role=actor.get("role"),
            subject=actor.get("subject"),
            district=actor.get("district"),
            payload=args.get("payload"),
        )

    def _on_workflow_execution_update_completed_event_attributes(
        self, pos, run, event, attrs
    ) -> None:
        entry = self.actions.get(attrs.meta.update_id)
        if attrs.outcome.HasField("failure"):
            if entry is not None:
                entry.status, entry.error = "failed", attrs.outcome.failure.message
            return
        state = _decode(attrs.outcome.success)
        self._keep_state(pos, state)
        if entry is not None and isinstance(state, dict):
            entry.status = "completed"
            entry.stage_after = state.get("stage")
            entry.waiting_on_after = state.get("waiting_on")

    def _on_activity_task_scheduled_event_attributes(self, pos, run, event, attrs) -> None:
        name, value = attrs.activity_type.name, _decode(attrs.input)
        value = value if isinstance(value, dict) else {}
        common = {"event_id": event.event_id, "run": run, "at": _at(event)}
        if name == "decide":
            self.decisions[(run, event.event_id)] = DecisionEntry(
                **common,
                decision_id=value.get("decision_id"),
                rule=value.get("rule"),
                context=value.get("context") or {},
            )
        elif name == "notify_deadline":
            self.notices.append(
                NoticeEntry(
                    **common,
                    kind=str(value.get("kind")),
                    step=value.get("step"),
                    role=value.get("role"),
                    deadline=_text(value.get("deadline")),
                    escalate_to=value.get("escalate_to"),
                )
            )
        elif name == "change_lists":
            self.lists.append(
                ListEntry(**common, change=str(value.get("change")), reason=value.get("reason"))
            )

    def _on_activity_task_completed_event_attributes(self, pos, run, event, attrs) -> None:
        entry = self.decisions.get((run, attrs.scheduled_event_id))
        decision = _decode(attrs.result)
        if entry is None or not isinstance(decision, dict):
            return
        entry.status, entry.at = "completed", _at(event)
        for field in ("rule", "version", "row", "outcome", "citation", "explanation"):
            if decision.get(field) is not None:
                setattr(entry, field, decision[field])
        entry.decision_id = decision.get("id", entry.decision_id)
        entry.inputs = decision.get("inputs") or {}
        entry.details = decision.get("details") or {}

    def _activity_failed(self, run, event, attrs, status: str) -> None:
        entry = self.decisions.get((run, attrs.scheduled_event_id))
        if entry is not None:
            entry.status, entry.at = status, _at(event)

    def _on_activity_task_failed_event_attributes(self, pos, run, event, attrs) -> None:
        self._activity_failed(run, event, attrs, "failed")

    def _on_activity_task_timed_out_event_attributes(self, pos, run, event, attrs) -> None:
        self._activity_failed(run, event, attrs, "timed_out")

    def _on_upsert_workflow_search_attributes_event_attributes(
        self, pos, run, event, attrs
    ) -> None:
        self._search_attributes(pos, run, event, attrs.search_attributes.indexed_fields)

    def _search_attributes(self, pos, run, event, fields) -> None:
        was_overdue = bool(self.search.get("Overdue"))
        for name, payload in fields.items():
            self.search[name] = _decode(payload)
        if "Stage" in fields and isinstance(self.search.get("Stage"), str):
            self.stage_marks.append((pos, _at(event), self.search["Stage"]))
        overdue = bool(self.search.get("Overdue"))
        if "Overdue" in fields and overdue != was_overdue:
            self.overdue.append(
                OverdueEntry(
                    event_id=event.event_id,
                    run=run,
                    at=_at(event),
                    overdue=overdue,
                    stage=_text(self.search.get("Stage")),
                    waiting_on=_text(self.search.get("WaitingOn")),
                )
            )

    def _keep_state(self, pos: int, state: Any) -> None:
        if isinstance(state, dict) and isinstance(state.get("history"), list):
            self.state, self.state_event = state, pos

    def stages(self) -> list[StageVisitEntry]:
        """The workflow's own stage visits, then any stage it entered after it last said so."""
        visits = [StageVisitEntry.model_validate(v) for v in (self.state or {}).get("history", [])]
        for pos, at, stage in self.stage_marks:
            if pos <= self.state_event or (visits and visits[-1].stage == stage):
                continue
            if visits and visits[-1].left is None:
                visits[-1].left = at
            visits.append(StageVisitEntry(stage=stage, entered=at))
        return visits


def build_trail(history: ParcelHistory, wid: str | None = None) -> Trail:
    builder = _TrailBuilder()
    position = 0
    for run_number, events in enumerate(history.runs(), start=1):
        for event in events:
            position += 1
            builder.feed(position, run_number, event)
        builder.runs[-1].events = len(events)
    facts = builder.facts
    stages = builder.stages()
    return Trail(
        workflow_id=wid or history.workflow_id(),
        parcel_id=facts.get("parcel_id"),
        name=facts.get("name"),
        district=facts.get("district"),
        planned_use=facts.get("planned_use"),
        facts=facts,
        status=builder.runs[-1].status,
        stage=stages[-1].stage if stages else None,
        runs=builder.runs,
        stages=stages,
        actions=list(builder.actions.values()),
        decisions=list(builder.decisions.values()),
        notices=builder.notices,
        overdue_flags=builder.overdue,
        list_changes=builder.lists,
        history_sha256=history.sha256(),
        history_events=len(history.events),
    )


# --- the trail as text -----------------------------------------------------------------


def format_when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def render_text(trail: Trail) -> str:
    return "\n".join(_text_lines(trail)) + "\n"


def _text_lines(trail: Trail) -> Iterator[str]:
    yield f"Decision trail of {trail.workflow_id}: {trail.name or '?'} ({trail.district or '?'})"
    yield f"planned use {trail.planned_use or '?'}; status {trail.status}; stage {trail.stage}"
    yield f"history: {trail.history_events} events in {len(trail.runs)} run(s)"
    yield f"history sha256: {trail.history_sha256}"
    yield f"  ({trail.hash_definition})"
    for run in trail.runs:
        yield (
            f"run {run.run} {run.run_id}: {run.status}, {format_when(run.started_at)} → "
            f"{format_when(run.closed_at)}, {run.events} events"
        )
    yield from _section("Stages", _stage_lines(trail.stages))
    yield from _section("Actions", _action_lines(trail.actions))
    yield from _section("Rule decisions", _decision_lines(trail.decisions))
    yield from _section("Reminders and escalations", _notice_lines(trail.notices))
    yield from _section("Overdue flags", _overdue_lines(trail.overdue_flags))
    yield from _section("List changes", _list_lines(trail.list_changes))


def _section(title: str, lines: Iterable[str]) -> Iterator[str]:
    yield ""
    yield title
    yield "-" * len(title)
    empty = True
    for line in lines:
        empty = False
        yield line
    if empty:
        yield "(none)"


def _stage_lines(stages: list[StageVisitEntry]) -> Iterator[str]:
    for visit in stages:
        left = f"left {format_when(visit.left)} by {visit.by or '—'}" if visit.left else "(current)"
        yield f"{visit.stage:<18} entered {format_when(visit.entered)}  {left}"


def _action_lines(actions: list[ActionEntry]) -> Iterator[str]:
    for a in actions:
        after = f"→ {a.stage_after}" if a.stage_after else a.status
        who = f"{a.role} ({a.subject})"
        yield f"[event {a.event_id}] {format_when(a.at)}  {a.action} by {who} {after}"
        yield f"    payload: {compact_json(a.payload)}"
        if a.error:
            yield f"    error: {a.error}"


def _decision_lines(decisions: list[DecisionEntry]) -> Iterator[str]:
    for d in decisions:
        yield (
            f"[event {d.event_id}] {format_when(d.at)}  {d.rule} v{d.version} row {d.row}: "
            f"{d.outcome} ({d.citation}) [{d.decision_id}, {d.status}]"
        )
        yield f"    {d.explanation}"
        yield f"    inputs: {compact_json(d.inputs)}"
        if d.context:
            yield f"    context: {compact_json(d.context)}"


def _notice_lines(notices: list[NoticeEntry]) -> Iterator[str]:
    for n in notices:
        to = f", escalated to {n.escalate_to}" if n.escalate_to else ""
        yield (
            f"[event {n.event_id}] {format_when(n.at)}  {n.kind}: step {n.step} owed by {n.role}, "
            f"deadline {n.deadline}{to}"
        )


def _overdue_lines(flags: list[OverdueEntry]) -> Iterator[str]:
    for f in flags:
        state = "OVERDUE" if f.overdue else "no longer overdue"
        yield f"[event {f.event_id}] {format_when(f.at)}  {state} (stage {f.stage}, {f.waiting_on})"


def _list_lines(changes: list[ListEntry]) -> Iterator[str]:
    for c in changes:
        yield f"[event {c.event_id}] {format_when(c.at)}  {c.change}: {c.reason}"
