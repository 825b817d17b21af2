"""Actors the engine can verify: the API signs the actor it authenticated, the update
validator refuses anything else.

HMAC-SHA256 over the canonical JSON of what the action claims: the workflow it targets,
the action, the actor, the digest of the body, the visit, the idempotency digest and
when it was issued. A request captured from the wire cannot be replayed with another
body, on another parcel, as another actor, or (after `MAX_AGE_S`) at all.

The worker installs the key ring at start-up (`install`); validators run only on live
workflow tasks, never on replay, so reading the ring there cannot break determinism.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from landflow.messages import ActionRequest, canonical_json

MAX_AGE_S = 300.0  # a signed request older than this (by workflow time) is refused
MAX_SKEW_S = 60.0  # clocks of API and server may differ a little


class BadSignature(ValueError):
    pass


@dataclass(frozen=True)
class KeyRing:
    """The key that signs, and earlier keys still accepted while a rotation completes."""

    current: bytes
    previous: tuple[bytes, ...] = ()

    @classmethod
    def from_secrets(cls, current: str, previous: list[str] | tuple[str, ...] = ()) -> KeyRing:
        if len(current.encode()) < 16:
            raise ValueError("the actor signing key must be at least 16 bytes")
        return cls(current.encode(), tuple(p.encode() for p in previous if p))


_ring: KeyRing | None = None


def install(ring: KeyRing) -> None:
    global _ring
    _ring = ring


def installed() -> KeyRing:
    if _ring is None:
        raise BadSignature("no actor signing key is installed in this process")
    return _ring


def _message(workflow_id: str, action: str, request: ActionRequest) -> bytes:
    return canonical_json(
        {
            "workflow_id": workflow_id,
            "action": action,
            "actor": request.actor.model_dump(mode="json"),
            "digest": request.digest(),
            "visit": request.visit,
            "key": request.key,
            "size": request.size,
            "body_error": request.body_error,
            "problems": request.problems,
            "issued_at": request.issued_at.isoformat(),
        }
    )


def _mac(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(ring: KeyRing, workflow_id: str, action: str, request: ActionRequest) -> ActionRequest:
    signature = _mac(ring.current, _message(workflow_id, action, request))
    return request.model_copy(update={"signature": signature})


def verify(
    ring: KeyRing, workflow_id: str, action: str, request: ActionRequest, now: datetime
) -> None:
    """Raise BadSignature unless the request was signed by a key of the ring, recently."""
    if not request.signature:
        raise BadSignature("the action is not signed: actions reach a parcel only through the API")
    message = _message(workflow_id, action, request)
    if not any(
        hmac.compare_digest(_mac(key, message), request.signature)
        for key in (ring.current, *ring.previous)
    ):
        raise BadSignature("the action's signature does not match its actor, parcel or body")
    age = (now - request.issued_at).total_seconds()
    if age > MAX_AGE_S or age < -MAX_SKEW_S:
        raise BadSignature(f"the signed action is {age:.0f}s old; send it again")
