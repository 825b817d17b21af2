"""One parcel model family across the core and the registry.

The core may not import the registry, and the projection the workflow sends
(`landflow.messages.ParcelProjection`, with its `TaskRow`s) is recorded in every history,
so its JSON cannot follow the tables. The registry's rows (`registry.tables.ParcelRow`,
`TaskBase`) are written from it field by name (`registry.writes.stored`): these tests keep
the two field sets and their types equal, so a field added to one and forgotten in the
other fails here rather than going missing from lists and inboxes.
"""

from __future__ import annotations

import types
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from enum import Enum
from inspect import isclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import pytest
from pydantic import BaseModel
from sqlalchemy import JSON
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from landflow import messages
from landflow.facts import Party
from landflow.state import Disclosure, Parties
from landflow.vocabulary import Role, Stage, Step
from registry import writes
from registry.tables import ParcelRow, TaskBase, TaskRow, aware
from tests.unit.registry import projection, sqlite_engine, task

BEIJING = timezone(timedelta(hours=8))
ROW_ONLY = {"current"}  # which registration of the id is the newest: the writer's to say
MESSAGE_ONLY = {"tasks"}  # the inbox rows (TaskRow), a table of their own


def _column_type(annotation: Any) -> tuple[Any, bool]:
    """The Python type a column keeps a field of this annotation as, and whether the field
    may be None: enums and literals by value (str), models as JSON (dict), lists of enums
    comma-separated (str)."""
    nullable = False
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(get_args(annotation))
        [annotation] = args
    origin = get_origin(annotation) or annotation
    if origin is Literal or (isclass(origin) and issubclass(origin, Enum)):
        return str, nullable
    if isclass(origin) and issubclass(origin, BaseModel):
        return dict, nullable
    if origin is list and all(isclass(a) and issubclass(a, Enum) for a in get_args(annotation)):
        return str, nullable
    return origin, nullable


def _compare(message: type[BaseModel], row: type[Any], names: set[str]) -> list[str]:
    columns = row.__table__.columns
    problems = []
    for name in sorted(names):
        sent = _column_type(message.model_fields[name].annotation)
        kept = _column_type(row.model_fields[name].annotation)
        if isinstance(columns[name].type, JSON):
            sent, kept = (sent[0] in (dict, list), sent[1]), (kept[0] in (dict, list), kept[1])
        if sent != kept:
            problems.append(f"{name}: the message's is kept as {sent}, the row's is {kept}")
    return problems


def test_the_projection_and_the_parcel_row_have_the_same_fields() -> None:
    sent = set(messages.ParcelProjection.model_fields) - MESSAGE_ONLY
    kept = set(ParcelRow.model_fields) - ROW_ONLY
    assert sent - kept == set(), "fields of ParcelProjection with no column in ParcelRow"
    assert kept - sent == set(), "columns of ParcelRow that no projection field writes"


def test_the_projection_and_the_parcel_row_agree_on_each_fields_type() -> None:
    names = set(messages.ParcelProjection.model_fields) - MESSAGE_ONLY
    assert _compare(messages.ParcelProjection, ParcelRow, names) == []


def test_the_task_message_and_the_task_table_have_the_same_fields_and_types() -> None:
    sent, kept = set(messages.TaskRow.model_fields), set(TaskBase.model_fields)
    assert sent ^ kept == set(), "fields of one TaskRow the other lacks"
    assert _compare(messages.TaskRow, TaskRow, sent) == []


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield from sqlite_engine(tmp_path)


def test_every_field_written_reads_back_as_the_projection_sent_it(engine: Engine) -> None:
    """A projection with a value in every field, written and read back into the message:
    what a column keeps, and how, loses nothing."""
    at = datetime(2027, 5, 4, 9, 30, tzinfo=BEIJING)
    sent = projection(
        "P-FAMILY",
        7,
        stage=Stage.remediation,
        status="running",
        listed=True,
        overdue=True,
        deadline=at + timedelta(days=3),
        waiting_on=[Role.responsible_party, Role.district_epb],
        tasks=[
            task(
                Role.responsible_party,
                step=Step.works,
                stage=Stage.remediation,
                visit=12,
                party="91110105POLLUTER01",
                overdue=True,
                blocking=False,
            ).model_copy(update={"reminded": True}),
        ],
        parties=Parties(
            responsible_role=Role.responsible_party,
            responsible=Party(id="91110105POLLUTER01", name="北京焦化厂"),
            contractor=Party(id="91110105CONTRACT01", name="某修复工程公司"),
        ),
        disclosure=Disclosure(investigation_conclusion="超筛选值", evaluation_date=at),
        started_at=at,
    )
    with Session(engine) as session:
        assert writes.apply_projection(session, projection=sent)
    with Session(engine) as session:
        row = session.exec(select(ParcelRow).where(ParcelRow.run_id == sent.run_id)).one()
        tasks = session.exec(select(TaskRow).where(TaskRow.run_id == sent.run_id)).all()
        back = messages.ParcelProjection.model_validate(
            {
                **_aware(row),
                "waiting_on": row.waiting_on.split(","),
                "tasks": [_aware(t) for t in tasks],
            }
        )
    assert back == sent


def _aware(row: Any) -> dict[str, Any]:
    return {k: aware(v) if isinstance(v, datetime) else v for k, v in row.model_dump().items()}
