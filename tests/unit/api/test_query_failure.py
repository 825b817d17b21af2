"""A parcel whose worker cannot answer its state query (a history that fails to replay,
a worker on other code) is an outage of that parcel: 503 with Retry-After, never 500."""

from __future__ import annotations

from temporalio.client import WorkflowQueryFailedError

from api.errors import from_temporal


def test_a_failed_query_is_503_naming_the_parcel():
    failure = WorkflowQueryFailedError("[TMPRL1100] Nondeterminism error: ...")
    error = from_temporal(failure, "parcel P-1")
    assert (error.status, error.error) == (503, "Unavailable")
    assert "parcel P-1" in error.message and error.headers["Retry-After"]
