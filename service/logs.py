"""Structured JSON logs (python-json-logger): one object per line, parcel id included.

Activity and workflow records from temporalio carry their Temporal context in a nested
`temporal_activity` / `temporal_workflow` field; `TemporalIds` lifts `workflow_id` to the
top level and derives `parcel_id` from it when the caller did not pass one, so ops can
filter every line of a parcel with one key.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter
from temporalio import activity, workflow

from landflow.messages import WORKFLOW_ID_PREFIX as PARCEL_WORKFLOW_PREFIX


class TemporalIds(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = getattr(record, "temporal_activity", None) or getattr(
            record, "temporal_workflow", None
        )
        workflow_id = getattr(record, "workflow_id", None) or (context or {}).get("workflow_id")
        if workflow_id:
            record.workflow_id = workflow_id
            if not getattr(record, "parcel_id", None) and workflow_id.startswith(
                PARCEL_WORKFLOW_PREFIX
            ):
                record.parcel_id = workflow_id.removeprefix(PARCEL_WORKFLOW_PREFIX)
        return True


def json_handler(stream: TextIO = sys.stderr) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            json_ensure_ascii=False,
        )
    )
    handler.addFilter(TemporalIds())
    return handler


def setup_logging(level: int = logging.INFO) -> None:
    # The Temporal context is a JSON field already; don't repeat it inside the message.
    activity.logger.activity_info_on_message = False
    workflow.logger.workflow_info_on_message = False
    root = logging.getLogger()
    root.handlers[:] = [json_handler()]
    root.setLevel(level)
