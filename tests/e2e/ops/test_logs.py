"""Log lines are JSON objects that carry the parcel id and the workflow id, and never a
bearer token: ops filter one parcel's lines by one key, and logs are read by more
people than tokens may be.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from temporalio import activity

from landflow.messages import workflow_id
from service.logs import json_handler
from tests.helpers import TOKENS, act, facts, start


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What `setup_logging` sets up in the worker and API processes: the JSON handler on
    the root logger at INFO, Temporal's context as a field rather than in the message."""
    stream = io.StringIO()
    handler = json_handler(stream)
    root = logging.getLogger()
    saved = (root.level, activity.logger.activity_info_on_message)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    activity.logger.activity_info_on_message = False
    yield stream
    root.removeHandler(handler)
    root.setLevel(saved[0])
    activity.logger.activity_info_on_message = saved[1]


def records(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = stream.getvalue().splitlines()
    assert lines, "nothing was logged"
    parsed = []
    for line in lines:
        record = json.loads(line)  # every line is one JSON object
        assert isinstance(record, dict), line
        parsed.append(record)
    return parsed


async def test_parcel_lines_carry_its_ids_and_no_line_a_token(api, pid, settings, json_lines):
    unknown = "Bearer not-a-token-but-secret-9f3a"
    await start(api, facts(pid))
    refused = await api.get(f"/parcels/{pid}", headers={"Authorization": unknown})
    assert refused.status_code == 401
    await act(api, pid, "closure_screening", {"result": "suspected"}, "district_epb")

    lines = records(json_lines)
    mine = [r for r in lines if r.get("parcel_id") == pid]
    assert {r["workflow_id"] for r in mine} == {workflow_id(pid)}
    decision = next(r for r in mine if r["message"].startswith("decision R1 "))
    assert {"time", "level", "logger"} <= decision.keys() and decision["level"] == "INFO"
    assert decision["temporal_activity"]["activity_type"] == "rules.decide"
    listed = next(r for r in mine if r["message"] == "list suspected enter")
    assert listed["temporal_activity"]["workflow_id"] == workflow_id(pid)

    text = json_lines.getvalue()
    secrets = [*TOKENS, unknown.split()[1], settings.actor_key]
    assert [s for s in secrets if s in text] == []
    assert "Bearer" not in text


def test_workflow_id_is_lifted_and_parcel_id_derived_when_not_given():
    stream = io.StringIO()
    logger = logging.getLogger("landflow.test.logs")
    logger.addHandler(json_handler(stream))
    logger.propagate = False
    logger.warning("地块 overdue", extra={"temporal_workflow": {"workflow_id": "parcel-P-9"}})
    logger.warning("report", extra={"temporal_activity": {"workflow_id": "report-2027-run"}})
    logger.warning("given", extra={"workflow_id": "parcel-P-1", "parcel_id": "P-1-explicit"})
    logger.warning("no temporal context")
    first, report, given, bare = (json.loads(line) for line in stream.getvalue().splitlines())
    assert (first["workflow_id"], first["parcel_id"], first["message"]) == (
        "parcel-P-9",
        "P-9",
        "地块 overdue",  # not escaped: the handler writes UTF-8
    )
    assert report["workflow_id"] == "report-2027-run" and "parcel_id" not in report
    assert given["parcel_id"] == "P-1-explicit"
    assert "workflow_id" not in bare and "parcel_id" not in bare
    assert "地块" in stream.getvalue()
