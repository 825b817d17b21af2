"""The decision trail as text (the CLI) and as the printable page's filters."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from audit.trail import (
    ActionEntry,
    DecisionEntry,
    ListEntry,
    NoticeEntry,
    OverdueEntry,
    StageVisitEntry,
    Trail,
)


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
        if a.step:
            yield f"    answers step {a.step} ({a.clause})"
        yield f"    payload: {compact_json(a.payload)}"
        for d in a.documents:
            yield f"    cites {d.kind} {d.document_id} sha256 {d.sha256}"
        if a.samples:
            yield f"    samples: {a.samples.get('count')} (sha256 {a.samples.get('sha256')})"
        if a.error:
            yield f"    error: {a.error}"


def _decision_lines(decisions: list[DecisionEntry]) -> Iterator[str]:
    for d in decisions:
        yield (
            f"[event {d.event_id}] {format_when(d.at)}  {d.rule} v{d.version} row {d.row}: "
            f"{d.outcome} ({d.citation}) [{d.decision_id}, {d.status}]"
        )
        yield f"    {d.explanation}"
        if d.law_over_plan:
            yield f"    law over plan: {d.law_over_plan}"
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
        where = f"{c.change} {c.list_name}"
        yield f"[event {c.event_id}] {format_when(c.at)}  {where}: {c.reason} ({c.citation or '—'})"
