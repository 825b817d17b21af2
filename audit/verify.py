"""Every document a parcel's history cites is still in the store with the same bytes.

The history keeps, for each action, the SHA-256 of every document it cites and of the
samples it stored; the store names blobs by that digest. Re-hashing each blob proves the
bytes a bureau reviewed are the bytes the store holds now (a file edited in place keeps
its name and changes its hash).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from documents.store import DocumentStore, NotStored, StoreError
from workflows.history import ParcelHistory, decode


@dataclass(frozen=True)
class Citation:
    event_id: int
    action: str
    kind: str
    document_id: str | None
    sha256: str


@dataclass(frozen=True)
class Finding:
    citation: Citation
    problem: str  # "missing" or "changed: now <digest>"

    def __str__(self) -> str:
        c = self.citation
        what = c.document_id or "samples"
        return (
            f"event {c.event_id} {c.action}: {c.kind} {what} (sha256 {c.sha256}) is {self.problem}"
        )


def citations(history: ParcelHistory) -> Iterator[Citation]:
    """Documents and stored samples cited by the actions of every run."""
    for event in history.events:
        if not event.HasField("workflow_execution_update_accepted_event_attributes"):
            continue
        request = event.workflow_execution_update_accepted_event_attributes.accepted_request
        args = decode(request.input.args)
        if not isinstance(args, dict):
            continue
        name = request.input.name
        for cited in args.get("documents") or []:
            yield Citation(
                event.event_id, name, cited["kind"], cited["document_id"], cited["sha256"]
            )
        samples = args.get("samples")
        if isinstance(samples, dict) and samples.get("sha256"):
            yield Citation(
                event.event_id, name, "samples", samples.get("source"), samples["sha256"]
            )


def rehash(store: DocumentStore, sha256: str) -> str:
    digest = hashlib.sha256()
    with store.open(sha256) as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify(history: ParcelHistory, store: DocumentStore) -> tuple[int, list[Finding]]:
    """(documents checked, findings); no finding means every cited byte is as reviewed."""
    checked, findings, seen = 0, [], set()
    for citation in citations(history):
        if citation.sha256 in seen:
            continue
        seen.add(citation.sha256)
        checked += 1
        try:
            now = rehash(store, citation.sha256)
        except NotStored:
            findings.append(Finding(citation, "missing"))
            continue
        except StoreError as exc:
            findings.append(Finding(citation, f"unreadable ({exc})"))
            continue
        if now != citation.sha256:
            findings.append(Finding(citation, f"changed: its bytes now hash to {now}"))
    return checked, findings
