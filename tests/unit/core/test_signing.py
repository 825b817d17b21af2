"""Signed actors: what the API authenticated is what the workflow accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from landflow.messages import ActionRequest, Actor
from landflow.signing import BadSignature, KeyRing, sign, verify

RING = KeyRing.from_secrets("a-key-of-sixteen-bytes-or-more")
NOW = datetime(2027, 1, 1, tzinfo=UTC)


def request(**changes) -> ActionRequest:
    base = ActionRequest(
        actor=Actor(role="city_epb", subject="张三"), body={"decision": "accepted"}, issued_at=NOW
    )
    return base.model_copy(update=changes)


def test_a_signed_request_verifies_for_its_parcel_and_action():
    signed = sign(RING, "parcel-A", "filing_review", request())
    verify(RING, "parcel-A", "filing_review", signed, NOW + timedelta(seconds=5))


@pytest.mark.parametrize(
    "forgery",
    [
        lambda s: s.model_copy(update={"signature": ""}),
        lambda s: s.model_copy(update={"actor": Actor(role="city_epb", subject="forged")}),
        lambda s: s.model_copy(update={"body": {"decision": "returned"}}),
        lambda s: s.model_copy(update={"visit": 7}),
    ],
    ids=["unsigned", "other actor", "other body", "other visit"],
)
def test_any_change_breaks_the_signature(forgery):
    signed = sign(RING, "parcel-A", "filing_review", request())
    with pytest.raises(BadSignature):
        verify(RING, "parcel-A", "filing_review", forgery(signed), NOW)


def test_the_signature_binds_parcel_action_and_time_and_keys_rotate():
    signed = sign(RING, "parcel-A", "filing_review", request())
    for wid, action, now in (
        ("parcel-B", "filing_review", NOW),
        ("parcel-A", "removal_review", NOW),
        ("parcel-A", "filing_review", NOW + timedelta(minutes=6)),
    ):
        with pytest.raises(BadSignature):
            verify(RING, wid, action, signed, now)
    rotated = KeyRing.from_secrets(
        "the-next-key-of-sixteen-bytes", ["a-key-of-sixteen-bytes-or-more"]
    )
    verify(rotated, "parcel-A", "filing_review", signed, NOW)
    with pytest.raises(ValueError, match="16 bytes"):
        KeyRing.from_secrets("short")
