"""The action inbox: open a step's task, accept actions for it, hand the answer to the
procedure, answer the update once the parcel has moved on.

Invariants (tests/integration/workflows/test_inbox.py checks each):
1. An action is applied only to an open task, by one of its unanswered assignees, and
   each assignee answers a task visit at most once (exactly one application per visit).
2. A refused action changes nothing: the validator refuses before anything is written;
   the handler re-runs the step, answer and key checks first, because the validators of
   several updates in one workflow task all see the state before any of their handlers
   ran (the body's business checks stay the validator's, which replay does not run).
3. An update answers only once its action is *settled*: the procedure has opened the
   next step (or finished), or the side action and its projection are done; so the
   reply, the state query and the registry agree.
4. A task's deadline is a durable timer; its reminder and escalation are sent once per
   visit, also across continue-as-new (the flags travel with the task).
5. The parcel continues as new only between actions: no update in flight, nothing
   unsettled, no activity running.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from landflow.messages import ActionOutcome, ActionRequest, Refusal
    from landflow.policy import Policy
    from landflow.procedure import PROCEDURE, Owner, StepSpec
    from landflow.state import (
        DECISIVE_FIELDS,
        ActionEntry,
        Assignee,
        JournalEntry,
        KeyUse,
        ParcelState,
        Task,
    )
    from landflow.vocabulary import Action, Step
    from workflows.gate import Claim, check, manager_for, reject, resolve
    from workflows.journal import Journal

MAX_KEYS = 500  # Idempotency-Keys remembered per parcel (the newest)


@dataclass
class Answered:
    """What a step's task received: one action, or each opinion of a joint review."""

    step: Step
    visit: int
    entries: list[ActionEntry]

    @property
    def last(self) -> ActionEntry:
        return self.entries[-1]

    @property
    def action(self) -> Action:
        return self.last.action

    def value(self, name: str) -> Any:
        return self.last.decisive.get(name)

    @property
    def returned(self) -> bool:
        """A joint review: one bureau returned the report (Law 59 ¶3, 61, 66)."""
        return any(e.decisive.get("decision") == "returned" for e in self.entries)


class Effects(Protocol):
    """What the inbox asks of its workflow: write the projection, send a notice, process
    a side action, and continue as new."""

    async def sync(self) -> None: ...

    async def notify_deadline(self, kind: str, task: Task) -> None: ...

    async def side_action(
        self, claim: Claim, entry: ActionEntry, request: ActionRequest
    ) -> None: ...

    async def continue_as_new(self) -> None: ...


@dataclass
class _Pending:
    fresh: dict[int, list[int]] = field(default_factory=dict)  # visit -> seqs not yet taken
    unsettled: set[int] = field(default_factory=set)  # applied, update not answered yet
    taken: set[int] = field(default_factory=set)  # handed to the procedure, not yet settled
    settled: set[int] = field(default_factory=set)  # may answer


@dataclass
class _Opening:
    """The step visits opened in the current workflow task (known by the history length
    at its start, the same for every activation of one task)."""

    length: int = 0
    visits: set[int] = field(default_factory=set)

    def note(self, visit: int, length: int) -> None:
        if length != self.length:
            self.length, self.visits = length, set()
        self.visits.add(visit)

    def opened(self, visit: int, length: int) -> bool:
        return length == self.length and visit in self.visits


class Inbox:
    def __init__(
        self, state: ParcelState, policy: Policy, journal: Journal, effects: Effects
    ) -> None:
        self.state, self.policy, self.journal, self.effects = state, policy, journal, effects
        self._pending = _Pending()
        self._activities = 0  # activities running on the inbox's behalf
        self.updates = 0  # actions accepted in this run (Temporal allows 2,000 per run)
        self.projected = 0  # steps opened and written to the registry in this run
        self.answered: Step | None = None  # the step the procedure was last handed
        self._watchers: list[asyncio.Task[None]] = []
        self._opening = _Opening()

    # --- the procedure's side -----------------------------------------------------

    async def step(self, step: Step, *, allows: Sequence[str] = ()) -> Answered:
        """Wait for the step's answer; the procedure's only way of waiting for people."""
        if self.journal.replaying:
            entry = self.journal.take("step", step.value)
            by_seq = {a.seq: a for a in self.state.actions}
            self.answered = step
            return Answered(step, by_seq[entry.seqs[0]].visit, [by_seq[s] for s in entry.seqs])
        task = self._adopt(step) or self._open(step, resolve_owners(step, self.state), allows)
        await self.effects.sync()
        self.projected += 1
        self.settle()
        while True:
            await workflow.wait_condition(
                lambda: bool(self._fresh(task)) or self._should_continue()
            )
            if not self._fresh(task):
                await self.effects.continue_as_new()
                continue
            done = self._take(task)
            if done is not None:
                self.journal.record(
                    JournalEntry(kind="step", name=step.value, seqs=[e.seq for e in done.entries])
                )
                self.answered = step
                return done
            await self.effects.sync()  # a joint review's first opinion: recorded, still open
            self.settle()

    def open_side(self, step: Step, assignees: list[Assignee], about: int) -> Task:
        """A task that never holds the procedure (a transport acknowledgement, BJ 29)."""
        return self._open(step, assignees, (), about=about)

    def settle(self) -> None:
        """Let the updates of the actions the procedure has taken answer (invariant 3);
        actions that arrive while this runs wait for the procedure to take them."""
        self._pending.settled |= self._pending.taken
        self._pending.unsettled -= self._pending.taken
        self._pending.taken.clear()

    def watch_side_tasks(self) -> None:
        """Timers of side tasks carried over from an earlier run (continue-as-new); the
        blocking task's start again when the procedure reaches its step."""
        for task in self.state.tasks:
            if not task.blocking:
                self._watch(task)

    def _adopt(self, step: Step) -> Task | None:
        """After a fast-forward, the step left open by the earlier run is this one."""
        task = self.state.blocking()
        if task is None:
            return None
        if task.step != step:
            raise RuntimeError(f"the carried open step is {task.step}, the procedure is at {step}")
        self._watch(task)
        return task

    def _open(
        self, step: Step, assignees: list[Assignee], allows: Sequence[str], about: int | None = None
    ) -> Task:
        spec = PROCEDURE[step]
        if not assignees:
            raise RuntimeError(f"step {step} has no one to owe it on parcel {self.state.parcel_id}")
        rule = self.policy.steps[step]
        now = workflow.now()
        self.state.visits += 1
        task = Task(
            visit=self.state.visits,
            step=step,
            stage=spec.stage,
            blocking=spec.blocking,
            opened_at=now,
            deadline=now + timedelta(days=rule.days),
            assignees=assignees,
            allows=list(allows),
            about=about,
        )
        self.state.tasks.append(task)
        self._opening.note(task.visit, workflow.info().get_current_history_length())
        self._watch(task)
        return task

    def _fresh(self, task: Task) -> list[int]:
        return self._pending.fresh.get(task.visit, [])

    def _take(self, task: Task) -> Answered | None:
        """The task's answer if it is complete; a joint review is complete when every
        bureau answered or one returned the report."""
        self._pending.taken.update(self._pending.fresh.pop(task.visit, []))
        spec = PROCEDURE[task.step]
        entries = [a for a in self.state.actions if a.visit == task.visit and _ends(a)]
        complete = (
            not spec.joint
            or all(a.answered for a in task.assignees)
            or any(e.decisive.get("decision") == "returned" for e in entries)
        )
        if not complete or not entries:
            return None
        self._close(task)
        return Answered(task.step, task.visit, entries)

    def _close(self, task: Task) -> None:
        self.state.tasks = [t for t in self.state.tasks if t.visit != task.visit]

    # --- deadlines ---------------------------------------------------------------

    def _watch(self, task: Task) -> None:
        # A workflow's own event loop runs this deterministically (like any coroutine).
        self._watchers.append(asyncio.get_running_loop().create_task(self._deadline(task)))

    async def _deadline(self, task: Task) -> None:
        """Remind before the deadline, flag and escalate at it; stop when the task closes."""
        rule = self.policy.steps[task.step]
        remind_at = task.deadline - timedelta(days=rule.remind_days_before)
        if not task.reminded and await self._passes(task, remind_at, f"remind {task.step.value}"):
            task.reminded = True
            await self._tracked(self.effects.notify_deadline("reminder", task))
        if not task.escalated and await self._passes(
            task, task.deadline, f"deadline {task.step.value}"
        ):
            task.escalated = task.overdue = True
            await self._tracked(self.effects.sync())
            await self._tracked(self.effects.notify_deadline("escalation", task))

    async def _passes(self, task: Task, moment: datetime, summary: str) -> bool:
        """True if `moment` comes while the task is still open."""
        remaining = (moment - workflow.now()).total_seconds()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: not self._is_open(task), timeout=remaining, timeout_summary=summary
                )
        return self._is_open(task)

    def _is_open(self, task: Task) -> bool:
        return any(t.visit == task.visit for t in self.state.tasks)

    async def _tracked(self, call: Coroutine[object, object, None]) -> None:
        self._activities += 1
        try:
            await call
        finally:
            self._activities -= 1

    # --- continue-as-new -----------------------------------------------------------

    def _should_continue(self) -> bool:
        info, budget = workflow.info(), self.policy.history
        due = (
            info.is_continue_as_new_suggested()
            or info.get_current_history_size() > budget.continue_as_new_after_bytes
            or info.get_current_history_length() > budget.continue_as_new_after_events
            or self.updates > budget.continue_as_new_after_updates
        )
        return (
            due
            and self.updates > 0  # a run that applied nothing yet would only start over
            and self._activities == 0
            and not self._pending.unsettled
            and not any(self._pending.fresh.values())
            and workflow.all_handlers_finished()
        )

    # --- the update's side -------------------------------------------------------------

    def check(self, name: str, request: ActionRequest, *, rechecking: bool = False) -> Claim:
        claim = self._check(name, request, rechecking)
        length = workflow.info().get_current_history_length()
        if not rechecking and self._opening.opened(claim.task.visit, length):
            # The step opened in this very workflow task. When a worker takes the task
            # with the whole history, the SDK may hand it the update after the activity
            # result that opened the step, and a replay hands it over before: the update
            # accepted here would not replay (update and command order differ). Refused,
            # it leaves no trace; the client's retry lands in a later task.
            raise reject(
                Refusal.wrong_stage,
                f"{claim.task.step.value} is opening right now; send the action again",
            )
        return claim

    def _check(self, name: str, request: ActionRequest, rechecking: bool) -> Claim:
        return check(
            self.state,
            self.policy,
            request.actor,
            name,
            request,
            workflow.now(),
            workflow.info().get_current_history_size(),
            rechecking=rechecking,
        )

    async def act(self, name: str, request: ActionRequest) -> ActionOutcome:
        # invariant 2: another update of this workflow task may have moved the state on
        claim = self.check(name, request, rechecking=True)
        entry = self._apply(claim, request)
        if claim.answer.ends_step and claim.task.blocking:
            self._pending.fresh.setdefault(claim.task.visit, []).append(entry.seq)
        else:
            await self._tracked(self.effects.side_action(claim, entry, request))
            if not claim.task.blocking and all(a.answered for a in claim.task.assignees):
                self._close(claim.task)
            await self._tracked(self.effects.sync())
            self._pending.settled.add(entry.seq)
            self._pending.unsettled.discard(entry.seq)
        await workflow.wait_condition(lambda: entry.seq in self._pending.settled)
        self._pending.settled.discard(entry.seq)
        return self.outcome(entry)

    def _apply(self, claim: Claim, request: ActionRequest) -> ActionEntry:
        task, actor = claim.task, request.actor
        if claim.answer.ends_step or not task.blocking:
            # A joint review takes one opinion per bureau until one returns the report;
            # any other task is answered by its first answer (invariant 1).
            opinion = getattr(claim.body, "decision", None)
            decided = not PROCEDURE[task.step].joint or opinion == "returned"
            for index, assignee in enumerate(task.assignees):
                if index == claim.assignee or (decided and task.blocking):
                    assignee.answered = True
            task.assignees[claim.assignee].opinion = opinion
        self.state.seq += 1
        body = claim.body.model_dump(mode="json")
        entry = ActionEntry(
            seq=self.state.seq,
            visit=task.visit,
            step=task.step,
            action=claim.action,
            role=actor.role,
            district=actor.district,
            party=actor.party,
            subject=actor.subject,
            at=workflow.now(),
            digest=request.digest(),
            decisive={k: body[k] for k in DECISIVE_FIELDS.get(claim.action, ()) if k in body},
            documents=request.documents,
            samples=request.samples,
        )
        self.state.actions.append(entry)
        if request.key is not None:
            self.state.keys[request.key] = KeyUse(digest=entry.digest, seq=entry.seq)
            if len(self.state.keys) > MAX_KEYS:
                self.state.keys.pop(next(iter(self.state.keys)))
        self.updates += 1
        self._pending.unsettled.add(entry.seq)
        return entry

    def outcome(self, entry: ActionEntry) -> ActionOutcome:
        task = self.state.blocking()
        return ActionOutcome(
            parcel_id=self.state.parcel_id,
            action=entry.action,
            seq=entry.seq,
            visit=entry.visit,
            stage=self.state.stage,
            step=task.step if task else None,
            waiting_on=self.state.waiting_on(),
            deadline=task.deadline if task else None,
            status=self.state.status,
            answered=entry.step,
        )


def resolve_owners(step: Step, state: ParcelState) -> list[Assignee]:
    """Every owner of the step, resolved on the parcel (one assignee per owner); those
    with only side actions do not owe the step. A step no bound owner can take (a land
    user's, on land with none bound) goes to the land's manager (`gate.manager_for`)."""
    spec = PROCEDURE[step]
    return _resolved(spec, state, resolve) or _resolved(spec, state, manager_for)


def _resolved(
    spec: StepSpec, state: ParcelState, resolver: Callable[[Owner, ParcelState], list[Assignee]]
) -> list[Assignee]:
    found: list[Assignee] = []
    for owner in spec.owners():
        owes = any(a.ends_step for a in spec.answers if a.by == owner)
        for assignee in resolver(owner, state):
            assignee.owes = owes
            if all(
                (a.role, a.district, a.party) != (assignee.role, assignee.district, assignee.party)
                for a in found
            ):
                found.append(assignee)
    return found


def _ends(entry: ActionEntry) -> bool:
    spec = PROCEDURE[entry.step]
    return any(a.action == entry.action and a.ends_step for a in spec.answers)
