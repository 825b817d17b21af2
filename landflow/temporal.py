"""One way to reach Temporal, with the pydantic data converter on every client."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from landflow.settings import Settings


def workflow_id(parcel_id: str) -> str:
    return f"parcel-{parcel_id}"


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
    )
