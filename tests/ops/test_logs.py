"""Worker log lines are JSON objects that carry the parcel id and the workflow id."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from landflow.logs import json_handler
from tests.helpers import clean_facts, start


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """The JSON handler of `landflow worker`, on the loggers the SDK logs activities to."""
    stream = io.StringIO()
    handler = json_handler(stream)
    logger = logging.getLogger("temporalio.activity")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(level)


async def test_activity_log_lines_carry_parcel_and_workflow_ids(api, pid, json_lines):
    await start(api, clean_facts(pid))
    records = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    mine = [r for r in records if r.get("parcel_id") == pid]
    decision = next(r for r in mine if r["message"].startswith("decision R1"))
    assert decision["workflow_id"] == f"parcel-{pid}"
    assert decision["temporal_activity"]["activity_type"] == "decide"
    assert {"time", "level", "logger"} <= decision.keys() and decision["level"] == "INFO"


def test_workflow_id_is_lifted_and_parcel_id_derived_when_not_given():
    stream = io.StringIO()
    logger = logging.getLogger("landflow.test.logs")
    logger.addHandler(json_handler(stream))
    logger.propagate = False
    logger.warning("地块 overdue", extra={"temporal_workflow": {"workflow_id": "parcel-P-9"}})
    logger.warning("no temporal context")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["workflow_id"], first["parcel_id"], first["message"]) == (
        "parcel-P-9",
        "P-9",
        "地块 overdue",
    )
    assert "workflow_id" not in second and "parcel_id" not in second
