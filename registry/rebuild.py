"""The registry rebuilt from the engine: what every row should be, read from the histories.

Each registration's rows are what its activities wrote, so they are read back from the
activity inputs and results its history keeps (the projections, list changes, decisions
and notices), for both procedures, and the run's close status from the history's last
event (a terminated parcel is known here even though no activity ran). Documents come
from the citations in the history and the metadata beside each blob in the store.

`reconcile(write=True)` brings every registration's rows to the engine's truth
(idempotent; hand edits are overwritten); with `write=False` it only lists the rows
that disagree (`landflow registry verify`). It runs beside live activities, so it never
deletes a registration's rows to write them again (a reader would see the parcel gone)
and never undoes what an activity wrote after the history it read: a row is only
changed where it contradicts the engine, a decision of a rule point still being decided
is kept, and a parcel whose history grew while it was written is read and settled again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from documents.store import DocumentStore
from landflow.decisions import Decision
from landflow.messages import (
    CHANGE_LIST,
    DECIDE,
    LEGACY_PARCEL_WORKFLOW,
    NOTIFY,
    PARCEL_WORKFLOWS,
    PROJECT,
    DecideResult,
    ListChange,
    Notice,
    ParcelProjection,
    parcel_id_of,
)
from landflow.state import RunStatus
from registry import writes
from registry.tables import (
    DecisionRow,
    DocumentRow,
    ListEntryRow,
    NoticeRow,
    ParcelRow,
    TaskRow,
    aware,
)
from workflows.history import ParcelHistory, at, decode, fetch_history, run_id_of
from workflows.legacy import contracts as legacy
from workflows.legacy import names as legacy_names
from workflows.legacy.convert import list_changes_of, notice_of, projection_of, registry_decision

log = logging.getLogger("landflow.registry")
CLOSED: dict[int, RunStatus] = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed_out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "canceled",
}


@dataclass
class Registration:
    """What the registry should hold for one registration of a parcel id."""

    run_id: str
    parcel_id: str
    projection: ParcelProjection | None = None
    list_changes: list[ListChange] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    documents: dict[str, str] = field(default_factory=dict)  # document_id -> sha256 cited
    deciding: bool = False  # a rules activity scheduled, not yet closed: its rows may exist


def _chain_id(run: Sequence[HistoryEvent]) -> tuple[str, bool]:
    """The registration a run belongs to, and whether it runs the first procedure."""
    started = run[0].workflow_execution_started_event_attributes
    is_legacy = started.workflow_type.name == LEGACY_PARCEL_WORKFLOW
    if is_legacy:
        return run_id_of(run), True
    return started.first_execution_run_id or started.original_execution_run_id, False


def registrations(history: ParcelHistory) -> list[Registration]:
    """The expected rows of every registration in a parcel's history, oldest first."""
    found: dict[str, Registration] = {}
    for run in history.runs():
        chain, is_legacy = _chain_id(run)
        parcel_id = parcel_id_of(history.workflow_id()) or ""
        registration = found.setdefault(chain, Registration(chain, parcel_id))
        _read_run(registration, run, is_legacy)
    return list(found.values())


DECIDING = frozenset({DECIDE.name, legacy_names.DECIDE})
ACTIVITY_CLOSED = (
    "activity_task_failed_event_attributes",
    "activity_task_timed_out_event_attributes",
    "activity_task_canceled_event_attributes",
)


def _read_run(reg: Registration, run: Sequence[HistoryEvent], is_legacy: bool) -> None:
    scheduled: dict[int, str] = {}
    open_decisions: set[int] = set()
    started_at = at(run[0])
    for event in run:
        kind = event.WhichOneof("attributes")
        if kind == "activity_task_scheduled_event_attributes":
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = attrs.activity_type.name
            if attrs.activity_type.name in DECIDING:
                open_decisions.add(event.event_id)
            _read_input(reg, attrs.activity_type.name, decode(attrs.input), is_legacy, started_at)
        elif kind == "activity_task_completed_event_attributes":
            completed = event.activity_task_completed_event_attributes
            name = scheduled.get(completed.scheduled_event_id)
            open_decisions.discard(completed.scheduled_event_id)
            _read_result(reg, name, decode(completed.result), is_legacy)
        elif kind in ACTIVITY_CLOSED:
            open_decisions.discard(getattr(event, kind).scheduled_event_id)
        elif kind == "workflow_execution_update_accepted_event_attributes":
            args = decode(
                event.workflow_execution_update_accepted_event_attributes.accepted_request.input.args
            )
            for cited in (args or {}).get("documents") or [] if isinstance(args, dict) else []:
                reg.documents[cited["document_id"]] = cited["sha256"]
        elif event.event_type in CLOSED and reg.projection is not None:
            reg.projection = reg.projection.model_copy(update={"status": CLOSED[event.event_type]})
    reg.deciding = reg.deciding or bool(open_decisions)


def _read_input(
    reg: Registration, name: str, value: Any, is_legacy: bool, started_at: datetime
) -> None:
    if not isinstance(value, dict):
        return
    if name == PROJECT.name:
        reg.projection = ParcelProjection.model_validate(value)
    elif name == CHANGE_LIST.name:
        reg.list_changes.append(ListChange.model_validate(value))
    elif name == NOTIFY.name:
        reg.notices.append(Notice.model_validate(value))
    elif is_legacy and name == legacy_names.SYNC_REGISTRY:
        first = reg.projection.started_at if reg.projection else started_at
        reg.projection = projection_of(
            legacy.RegistryUpdate.model_validate(value), reg.run_id, first
        )
    elif is_legacy and name == legacy_names.CHANGE_LISTS:
        name_, district = (
            (reg.projection.name, reg.projection.district) if reg.projection else ("", "")
        )
        reg.list_changes += list_changes_of(
            legacy.ListChange.model_validate(value), reg.run_id, name_, district
        )
    elif is_legacy and name == legacy_names.NOTIFY_DEADLINE:
        reg.notices.append(notice_of(legacy.DeadlineNotice.model_validate(value), reg.run_id))


def _read_result(reg: Registration, name: str | None, value: Any, is_legacy: bool) -> None:
    if name == DECIDE.name and isinstance(value, dict):
        reg.decisions += DecideResult.model_validate(value).decisions
    elif is_legacy and name == legacy_names.DECIDE and isinstance(value, dict):
        reg.decisions.append(registry_decision(Decision.model_validate(value), reg.run_id))


# --- writing and comparing -----------------------------------------------------------


def write_registration(session: Session, reg: Registration, store: DocumentStore | None) -> None:
    """Bring the registration's rows to what the engine says (hand edits go), changing
    only rows that contradict it: each write is whole, so a reader never finds the
    parcel missing, and rows of a decision still being made are left to its activity."""
    found = _rows(session, reg.run_id)
    if reg.projection is not None:
        writes.apply_projection(session, projection=reg.projection, force=True)
    elif found["parcel"] is not None:  # a row the engine never projected
        writes.forget_run(session, run_id=reg.run_id)
        found = _rows(session, reg.run_id)
    want_lists = _list_entries(reg.list_changes)
    for row in found["lists"]:
        if (aware(row.entered_at), aware(row.left_at)) != want_lists.get(row.list_name):
            session.delete(row)  # written again below from the engine's changes
    session.commit()
    for change in reg.list_changes:
        writes.apply_list_change(session, change=change)
    want_decisions = {d.id: (d.outcome, d.row) for d in reg.decisions}
    for row in found["decisions"]:
        wanted = want_decisions.get(row.decision_id)
        if (wanted is None and not reg.deciding) or (
            wanted is not None and wanted != (row.outcome, row.row)
        ):
            session.delete(row)
    session.commit()
    if reg.decisions:
        writes.add_decisions(
            session, run_id=reg.run_id, parcel_id=reg.parcel_id, decisions=reg.decisions
        )
    want_notices = {n.key for n in reg.notices}
    for row in found["notices"]:
        if row.key not in want_notices:
            session.delete(row)
    session.commit()
    for notice in reg.notices:
        writes.add_notice(session, notice=notice)
    if store is not None:
        for row in documents_of(reg, store):
            writes.add_document(session, row=row)


def documents_of(reg: Registration, store: DocumentStore) -> list[DocumentRow]:
    """Uploads of the parcel from the store's metadata, and every citation's digest."""
    rows: dict[str, DocumentRow] = {}
    for key in store.list_meta(f"meta/{reg.parcel_id}/"):
        raw = store.get_meta(key)
        if raw is None:
            continue
        meta = json.loads(raw)
        role, _, _ = str(meta.get("uploaded_by", "")).partition(":")
        rows[meta["document_id"]] = DocumentRow(
            **{
                k: meta[k]
                for k in (
                    "document_id",
                    "parcel_id",
                    "sha256",
                    "kind",
                    "filename",
                    "media_type",
                    "size",
                    "title",
                    "uploaded_by",
                )
            },
            uploaded_role=role,
            uploaded_at=datetime.fromisoformat(meta["uploaded_at"]),
        )
    return list(rows.values())


def _rows(session: Session, run_id: str) -> dict[str, Any]:
    return {
        "parcel": session.get(ParcelRow, run_id),
        "tasks": session.exec(select(TaskRow).where(TaskRow.run_id == run_id)).all(),
        "lists": session.exec(select(ListEntryRow).where(ListEntryRow.run_id == run_id)).all(),
        "decisions": session.exec(select(DecisionRow).where(DecisionRow.run_id == run_id)).all(),
        "notices": session.exec(select(NoticeRow).where(NoticeRow.run_id == run_id)).all(),
    }


PARCEL_FIELDS = (
    "parcel_id",
    "stage",
    "status",
    "listed",
    "overdue",
    "deadline",
    "waiting_on",
    "district",
    "name",
    "revision",
)


def differences(session: Session, reg: Registration) -> list[str]:
    """Every way the registry's rows of this registration differ from the engine's."""
    found = _rows(session, reg.run_id)
    where = f"{reg.parcel_id} (run {reg.run_id})"
    diffs: list[str] = []
    expected = reg.projection
    row = found["parcel"]
    if expected is not None:
        if row is None:
            diffs.append(f"{where}: no parcel row")
        else:
            want = writes.parcel_values(expected)
            for name in PARCEL_FIELDS:
                have, should = getattr(row, name), want[name]
                if isinstance(have, datetime) or isinstance(should, datetime):
                    have, should = aware(have), aware(should)
                if have != should:
                    diffs.append(f"{where}: parcels.{name} is {have!r}, the engine says {should!r}")
            tasks = {(t.visit, t.role, t.district, t.party) for t in found["tasks"]}
            want_tasks = {(t.visit, t.role.value, t.district, t.party) for t in expected.tasks}
            if tasks != want_tasks:
                have, should = sorted(tasks, key=str), sorted(want_tasks, key=str)
                diffs.append(f"{where}: tasks are {have}, the engine says {should}")
    diffs += _list_diffs(where, found["lists"], reg.list_changes)
    have_decisions = {(d.decision_id, d.outcome, d.row) for d in found["decisions"]}
    want_decisions = {(d.id, d.outcome, d.row) for d in reg.decisions}
    for missing in sorted(want_decisions - have_decisions):
        diffs.append(f"{where}: decision {missing[0]} ({missing[1]}) missing or changed")
    for extra in sorted(have_decisions - want_decisions):
        diffs.append(f"{where}: decision {extra[0]} ({extra[1]}) is not the engine's")
    have_notices, want_notices = {n.key for n in found["notices"]}, {n.key for n in reg.notices}
    for key in sorted(want_notices ^ have_notices):
        state = "missing" if key in want_notices else "not the engine's"
        diffs.append(f"{where}: notice {key} {state}")
    return diffs


def _list_entries(changes: list[ListChange]) -> dict[str, tuple[datetime, datetime | None]]:
    """Each list's entry as the engine's changes leave it: (entered, left)."""
    want: dict[str, tuple[datetime, datetime | None]] = {}
    for change in changes:
        if change.change == "enter":
            want.setdefault(change.list_name, (aware(change.at), None))
        elif change.list_name in want and want[change.list_name][1] is None:
            want[change.list_name] = (want[change.list_name][0], aware(change.at))
    return want


def _list_diffs(where: str, rows: Iterable[ListEntryRow], changes: list[ListChange]) -> list[str]:
    want = _list_entries(changes)
    have = {r.list_name: (aware(r.entered_at), aware(r.left_at)) for r in rows}
    diffs = []
    for name in sorted(set(want) | set(have)):
        if have.get(name) != want.get(name):
            diffs.append(
                f"{where}: list {name} entry is {have.get(name)}, the engine says {want.get(name)}"
            )
    return diffs


@dataclass
class Report:
    parcels: int = 0
    registrations: int = 0
    differences: list[str] = field(default_factory=list)
    unknown_runs: list[str] = field(default_factory=list)  # rows of runs the engine never had
    seen: set[str] = field(default_factory=set)  # parcel ids compared


ABNORMAL = '"Terminated", "Failed", "TimedOut", "Canceled"'


async def parcel_ids(client: Client, closed_since: datetime | None = None) -> list[str]:
    """Every parcel id in visibility, or those whose run ended abnormally since a moment."""
    types = ", ".join(f'"{t}"' for t in PARCEL_WORKFLOWS)
    query = f"WorkflowType IN ({types})"
    if closed_since is not None:
        query += (
            f' AND ExecutionStatus IN ({ABNORMAL}) AND CloseTime > "{closed_since.isoformat()}"'
        )
    found: dict[str, None] = {}
    async for execution in client.list_workflows(query):
        parcel_id = parcel_id_of(execution.id)
        if parcel_id:
            found[parcel_id] = None
    return list(found)


async def reconcile(
    client: Client,
    engine: Engine,
    store: DocumentStore | None,
    *,
    write: bool,
    closed_since: datetime | None = None,
    concurrency: int = 8,
    progress: Any = None,
) -> Report:
    """Compare (and with `write`, repair) every parcel's rows against its history; with
    `closed_since`, only parcels whose run ended abnormally since then (the periodic
    reconcile: a terminated parcel leaves the inboxes although no activity ran)."""
    report = Report()
    ids = await parcel_ids(client, closed_since)
    known_runs: set[str] = set()
    gate = asyncio.Semaphore(concurrency)

    async def one(parcel_id: str) -> None:
        async with gate:
            regs = await settle_parcel(client, engine, store, parcel_id, write=write, report=report)
        known_runs.update(r.run_id for r in regs)
        if progress is not None:
            progress(parcel_id)

    await asyncio.gather(*(one(p) for p in ids))
    if closed_since is not None:
        return report  # a partial pass says nothing about rows of other parcels
    with Session(engine) as session:
        stored = dict(session.exec(select(ParcelRow.run_id, ParcelRow.parcel_id)).all())
        stored.update(
            session.exec(select(ListEntryRow.run_id, ListEntryRow.parcel_id).distinct()).all()
        )
    # Rows of runs not in the listing: a parcel started since (its rows are its own) or a
    # run the engine never had. Each parcel is asked again before anything is removed.
    for parcel_id in sorted({stored[r] for r in set(stored) - known_runs}):
        try:
            async with gate:
                regs = await settle_parcel(
                    client, engine, store, parcel_id, write=write, report=report
                )
            known_runs.update(r.run_id for r in regs)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
    report.unknown_runs = sorted(set(stored) - known_runs)
    if write and report.unknown_runs:
        with Session(engine) as session:
            for run_id in report.unknown_runs:
                writes.forget_run(session, run_id=run_id)
    return report


async def settle_parcel(
    client: Client,
    engine: Engine,
    store: DocumentStore | None,
    parcel_id: str,
    *,
    write: bool,
    report: Report,
    attempts: int = 3,
) -> list[Registration]:
    """Compare (and with `write`, repair) one parcel's rows; its registrations. An
    activity that ran while the rows were written shows in a history grown meanwhile (its
    scheduling comes before its write): then the parcel is read and settled again."""
    history = await fetch_history(client, parcel_id)
    regs = registrations(history)
    diffs = await asyncio.to_thread(_settle, engine, store, regs, write)
    report.parcels += parcel_id not in report.seen
    report.seen.add(parcel_id)
    report.registrations += len(regs)
    report.differences.extend(diffs)
    for _ in range(attempts - 1):
        if not (write and diffs):
            break
        again = await fetch_history(client, parcel_id)
        if len(again.events) == len(history.events):
            break
        history, regs = again, registrations(again)
        diffs = await asyncio.to_thread(_settle, engine, store, regs, write)
    return regs


def _settle(
    engine: Engine, store: DocumentStore | None, regs: list[Registration], write: bool
) -> list[str]:
    """The differences found; with `write`, then repaired."""
    with Session(engine) as session:
        found = [d for reg in regs for d in differences(session, reg)]
        if write:
            for reg in regs:
                write_registration(session, reg, store)
        return found
