"""The decision trail: read from a parcel's history alone (never from the registry).

Every run of the parcel is read in order: the actions (who really acted — the actor the
API signed —, when, which step visit, the body's digest and the documents it cites),
every rule decision (rule, version, row, outcome, citation, explanation, inputs, and
where the law won over the plan), every notice (reminders, escalations, publications),
every change of the Overdue flag and of the public lists, and the stage visits. The
activities are recognised by the names `landflow.messages` gives them (and the first
procedure's names), the same names the workflows call.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.api.history.v1 import HistoryEvent

from landflow.messages import CHANGE_LIST, DECIDE, NOTIFY, PARCEL_WORKFLOW, STARTED_UPDATE
from landflow.procedure import PROCEDURE, steps_for
from landflow.vocabulary import Action, Step
from workflows.history import HASH_DEFINITION, ParcelHistory, at, decode, start_facts
from workflows.legacy import names as legacy


class StageVisitEntry(BaseModel):
    stage: str
    entered: datetime | None = None
    left: datetime | None = None
    by: str | None = None  # role:subject whose action moved the parcel on, or "system"


class CitedEntry(BaseModel):
    document_id: str
    kind: str
    sha256: str


class ActionEntry(BaseModel):
    event_id: int
    run: int
    at: datetime
    action: str
    role: str | None = None
    subject: str | None = None
    district: str | None = None
    party: str | None = None
    visit: int | None = None
    step: str | None = None  # the step the action answered
    clause: str | None = None  # that step's clause (landflow.procedure)
    payload: Any = None
    documents: list[CitedEntry] = Field(default_factory=list)
    samples: dict[str, Any] | None = None
    signed: bool = False
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
    law_over_plan: str | None = None
    inputs: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)


class NoticeEntry(BaseModel):
    event_id: int
    run: int
    at: datetime
    kind: str  # reminder | escalation | evaluation_published | removal_published | ...
    step: str | None = None
    role: str | None = None
    deadline: str | None = None
    escalate_to: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


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
    list_name: str | None = None
    change: str
    reason: str | None = None
    citation: str | None = None


class RunEntry(BaseModel):
    run: int
    run_id: str
    workflow_type: str
    started_at: datetime
    closed_at: datetime | None = None
    status: str
    events: int
    restart: dict[str, Any] | None = None


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
_STEP_IDS = frozenset(s.value for s in Step)
_ACTION_IDS = frozenset(a.value for a in Action)
_INTERNAL_UPDATES = frozenset({STARTED_UPDATE})  # answers POST /parcels; not an action
_DECIDE = frozenset({DECIDE.name, legacy.DECIDE})
_NOTIFY = frozenset({NOTIFY.name, legacy.NOTIFY_DEADLINE})
_LISTS = frozenset({CHANGE_LIST.name, legacy.CHANGE_LISTS})


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class _TrailBuilder:
    """One pass over the events, keeping what the trail needs by event type."""

    def __init__(self) -> None:
        self.actions: dict[str, ActionEntry] = {}  # by update id
        self.admitted: dict[str, Any] = {}  # update requests admitted without acceptance yet
        self.decisions: dict[tuple[int, int], list[DecisionEntry]] = {}  # by (run, scheduled)
        self.notices: list[NoticeEntry] = []
        self.overdue: list[OverdueEntry] = []
        self.lists: list[ListEntry] = []
        self.runs: list[RunEntry] = []
        self.facts: dict[str, Any] = {}
        self.visits: list[dict[str, Any]] | None = None  # the workflow's own stage visits
        self.visits_at = 0  # position (in the whole history) where they were read
        self.stage_marks: list[tuple[int, datetime, str]] = []  # Stage attribute upserts
        self.search: dict[str, Any] = {}

    def feed(self, position: int, run: int, event: HistoryEvent) -> None:
        kind = event.WhichOneof("attributes")
        handler = getattr(self, f"_on_{kind}", None) if kind else None
        if handler is not None and kind:
            handler(position, run, event, getattr(event, kind))
        if event.event_type in _CLOSED and self.runs:
            self.runs[-1].status = _CLOSED[event.event_type]
            self.runs[-1].closed_at = at(event)

    def _on_workflow_execution_started_event_attributes(self, pos, run, event, attrs) -> None:
        value = _dict(decode(attrs.input))
        if not self.facts:
            self.facts = start_facts(event)
        self._keep_visits(pos, _dict(value.get("carried")))
        self.runs.append(
            RunEntry(
                run=run,
                run_id=attrs.original_execution_run_id,
                workflow_type=attrs.workflow_type.name,
                started_at=at(event),
                status="running",
                events=0,
                restart=value.get("restart") if isinstance(value.get("restart"), dict) else None,
            )
        )
        self.search = {}
        self._search_attributes(pos, run, event, attrs.search_attributes.indexed_fields)

    def _on_workflow_execution_completed_event_attributes(self, pos, run, event, attrs) -> None:
        self._keep_visits(pos, _dict(decode(attrs.result)))

    def _on_workflow_execution_continued_as_new_event_attributes(
        self, pos, run, event, attrs
    ) -> None:
        self._keep_visits(pos, _dict(_dict(decode(attrs.input)).get("carried")))

    def _on_workflow_task_failed_event_attributes(self, pos, run, event, attrs) -> None:
        if attrs.cause == WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_RESET_WORKFLOW:
            self.runs[-1].run_id, self.runs[-1].started_at = attrs.new_run_id, at(event)

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
        args = _dict(decode(request.input.args))
        actor = _dict(args.get("actor"))
        body = args.get("body", args.get("payload"))  # the first procedure called it payload
        step = self._only_step(name)
        self.actions[request.meta.update_id or attrs.protocol_instance_id] = ActionEntry(
            event_id=event.event_id,
            run=run,
            at=at(event),
            action=name,
            role=actor.get("role"),
            subject=actor.get("subject"),
            district=actor.get("district"),
            party=actor.get("party"),
            visit=args.get("visit"),
            step=step,
            clause=PROCEDURE[Step(step)].clause if step else None,
            payload=body,
            documents=[CitedEntry.model_validate(d) for d in args.get("documents") or []],
            samples=args.get("samples"),
            signed=bool(args.get("signature")),
        )

    def _on_workflow_execution_update_completed_event_attributes(
        self, pos, run, event, attrs
    ) -> None:
        entry = self.actions.get(attrs.meta.update_id)
        if attrs.outcome.HasField("failure"):
            if entry is not None:
                entry.status, entry.error = "failed", attrs.outcome.failure.message
            return
        outcome = _dict(decode(attrs.outcome.success))
        if isinstance(outcome.get("history"), list):  # the first procedure answered its state
            self._keep_visits(pos, {"stages": outcome["history"]})
        if entry is not None and outcome:
            waiting = outcome.get("waiting_on")
            entry.status = "completed"
            answered = outcome.get("answered")
            if answered in _STEP_IDS and self._todays_procedure():
                entry.step, entry.clause = answered, PROCEDURE[Step(answered)].clause
            entry.stage_after = outcome.get("stage")
            entry.waiting_on_after = ", ".join(waiting) if isinstance(waiting, list) else waiting

    def _todays_procedure(self) -> bool:
        return bool(self.runs) and self.runs[-1].workflow_type == PARCEL_WORKFLOW

    def _only_step(self, action: str) -> str | None:
        """The step an action answers where only one step takes it (runs whose answers
        predate `ActionOutcome.answered` say no more); the first procedure's differ."""
        if not self._todays_procedure() or action not in _ACTION_IDS:
            return None
        steps = steps_for(Action(action))
        return steps[0].step.value if len(steps) == 1 else None

    def _on_activity_task_scheduled_event_attributes(self, pos, run, event, attrs) -> None:
        name, value = attrs.activity_type.name, _dict(decode(attrs.input))
        common = {"event_id": event.event_id, "run": run, "at": at(event)}
        if name in _DECIDE:
            self.decisions[(run, event.event_id)] = [
                DecisionEntry(
                    **common,
                    decision_id=value.get("decision_id"),
                    rule=value.get("rule"),
                    context=_dict(value.get("context")),
                )
            ]
        elif name in _NOTIFY:
            self.notices.append(
                NoticeEntry(
                    **common,
                    kind=str(value.get("kind")),
                    step=value.get("step"),
                    role=value.get("role"),
                    deadline=_text(value.get("deadline")),
                    escalate_to=value.get("escalate_to"),
                    details=_dict(value.get("details")),
                )
            )
        elif name in _LISTS:
            self.lists.append(
                ListEntry(
                    **common,
                    list_name=value.get("list_name") or "contaminated, negative",
                    change=str(value.get("change")),
                    reason=value.get("reason"),
                    citation=value.get("citation"),
                )
            )

    def _on_activity_task_completed_event_attributes(self, pos, run, event, attrs) -> None:
        entries = self.decisions.get((run, attrs.scheduled_event_id))
        result = _dict(decode(attrs.result))
        if entries is None or not result:
            return
        listed = result.get("decisions")
        made: list[Any] = listed if isinstance(listed, list) else [result]
        template = entries[0]
        entries[:] = [self._decision(template, _dict(d), at(event)) for d in made]

    @staticmethod
    def _decision(
        template: DecisionEntry, decision: dict[str, Any], when: datetime
    ) -> DecisionEntry:
        entry = template.model_copy(update={"status": "completed", "at": when})
        for field in (
            "rule",
            "version",
            "row",
            "outcome",
            "citation",
            "explanation",
            "law_over_plan",
        ):
            if decision.get(field) is not None:
                setattr(entry, field, decision[field])
        entry.decision_id = decision.get("id", entry.decision_id)
        entry.inputs = _dict(decision.get("inputs"))
        entry.details = _dict(decision.get("details"))
        return entry

    def _activity_failed(self, run: int, event: HistoryEvent, attrs: Any, status: str) -> None:
        for entry in self.decisions.get((run, attrs.scheduled_event_id), []):
            entry.status, entry.at = status, at(event)

    def _on_activity_task_failed_event_attributes(self, pos, run, event, attrs) -> None:
        self._activity_failed(run, event, attrs, "failed")

    def _on_activity_task_timed_out_event_attributes(self, pos, run, event, attrs) -> None:
        self._activity_failed(run, event, attrs, "timed_out")

    def _on_upsert_workflow_search_attributes_event_attributes(
        self, pos, run, event, attrs
    ) -> None:
        self._search_attributes(pos, run, event, attrs.search_attributes.indexed_fields)

    def _search_attributes(self, pos: int, run: int, event: HistoryEvent, fields: Any) -> None:
        was_overdue = bool(self.search.get("Overdue"))
        for name, payload in fields.items():
            self.search[name] = decode(payload)
        if "Stage" in fields and isinstance(self.search.get("Stage"), str):
            self.stage_marks.append((pos, at(event), self.search["Stage"]))
        overdue = bool(self.search.get("Overdue"))
        if "Overdue" in fields and overdue != was_overdue:
            self.overdue.append(
                OverdueEntry(
                    event_id=event.event_id,
                    run=run,
                    at=at(event),
                    overdue=overdue,
                    stage=_text(self.search.get("Stage")),
                    waiting_on=_text(self.search.get("WaitingOn")),
                )
            )

    def _keep_visits(self, pos: int, state: dict[str, Any]) -> None:
        visits = state.get("stages", state.get("history"))
        if isinstance(visits, list) and visits:
            self.visits, self.visits_at = visits, pos

    def stages(self) -> list[StageVisitEntry]:
        """The workflow's own stage visits, then any stage it entered after it last said so."""
        visits = [StageVisitEntry.model_validate(v) for v in self.visits or []]
        for pos, when, stage in self.stage_marks:
            if pos <= self.visits_at or (visits and visits[-1].stage == stage):
                continue
            if visits and visits[-1].left is None:
                visits[-1].left = when
            visits.append(StageVisitEntry(stage=stage, entered=when))
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
        decisions=[d for entries in builder.decisions.values() for d in entries],
        notices=builder.notices,
        overdue_flags=builder.overdue,
        list_changes=builder.lists,
        history_sha256=history.sha256(),
        history_events=len(history.events),
    )
