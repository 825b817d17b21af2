"""From an HTTP body to the signed `ActionRequest` a parcel's workflow accepts.

- The body is parsed here, not by FastAPI, so authorisation comes first: a problem with
  it travels to the gate as `body_error`/`problems` and is reported (422) only after the
  role, party and step checks (403, 409).
- Samples (inline, or from a cited lab_results spreadsheet) are validated all at once,
  stored once in the document store as canonical JSON, and cited by digest; cited
  documents are resolved to their SHA-256, and must belong to this parcel.
- The actor the API authenticated is signed (landflow/signing.py): the workflow refuses
  an action that did not come through here.
- The update id is a digest of caller, Idempotency-Key and body, so a retry applies
  once, and the same key with another body is a different update the gate refuses.
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from documents.store import DocumentStore, NotStored
from landflow import signing
from landflow.documents import CitedDocument, DocumentKind, SamplesRef
from landflow.messages import ActionRequest, Actor, canonical_json
from landflow.policy import Policy
from landflow.vocabulary import Action
from registry import queries
from rules import gb_standards, item_names, lab_results

MAX_BODY_DEPTH = 32  # the deepest action body is 4 levels; Temporal's converter stops at ~250
SAMPLE_ACTIONS = frozenset({Action.investigation_report, Action.monitoring_result})


class BodyProblem(ValueError):
    """The body cannot be used; `fields` name each bad field (reported after auth)."""

    def __init__(self, message: str, fields: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.fields = fields


def _deeper_than(value: Any, limit: int) -> bool:
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            if depth > limit:
                return True
            pending.extend((child, depth + 1) for child in item)
    return False


def _unkeepable(value: Any) -> tuple[str, str] | None:
    """The first value JSON parses but no record can keep, as (field path, reason): a lone
    surrogate (a `\\ud800` escape, which no UTF-8 encoder takes), a NUL character (which
    PostgreSQL text refuses), or NaN / Infinity / 1e400 (which the history's JSON would
    silently turn into null, breaking the body's signature)."""
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return path or "body", "contains a NUL character (\\u0000)"
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return path or "body", "contains an invalid Unicode escape (a lone surrogate)"
        elif isinstance(item, float) and not math.isfinite(item):
            return path or "body", f"{item} is not a finite number"
        elif isinstance(item, dict):
            for key, child in item.items():
                # the path names the key in words any encoder takes (`\\udfff` as such)
                name = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
                pending.append((f"{path}.{name}" if path else name, key))
                pending.append((f"{path}.{name}" if path else name, child))
        elif isinstance(item, list):
            pending.extend((f"{path}[{i}]", child) for i, child in enumerate(item))
    return None


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of an action body; BodyProblem says why it is not one."""
    if not raw:
        return {}
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise BodyProblem(
            "the body is not valid UTF-8", _field("body", "not valid UTF-8")
        ) from None
    except RecursionError:
        raise BodyProblem(
            "the JSON body is nested too deeply", _field("body", "too deep")
        ) from None
    except ValueError as exc:
        reason = f"the body is not valid JSON: {exc}"
        raise BodyProblem(reason, _field("body", reason)) from None
    if not isinstance(payload, dict):
        raise BodyProblem("the body must be a JSON object", _field("body", "not an object"))
    if _deeper_than(payload, MAX_BODY_DEPTH):
        reason = f"the JSON body is nested deeper than {MAX_BODY_DEPTH} levels"
        raise BodyProblem(reason, _field("body", reason))
    bad = _unkeepable(payload)
    if bad is not None:
        field, reason = bad
        raise BodyProblem(f"{field}: {reason}", _field(field, reason))
    return payload


def _field(name: str, reason: str) -> list[dict[str, Any]]:
    return [{"field": name, "reason": reason}]


def cite(session: Session, parcel_id: str, refs: Any) -> list[CitedDocument]:
    """Resolve `documents: [{document_id, kind}]` to citations with their digests."""
    if not isinstance(refs, list):
        raise BodyProblem("documents must be a list", _field("documents", "expected a list"))
    cited, problems = [], []
    for i, ref in enumerate(refs):
        where = f"documents[{i}]"
        if not isinstance(ref, dict) or set(ref) != {"document_id", "kind"}:
            problems.append({"field": where, "reason": "expected {document_id, kind}"})
            continue
        row = queries.document(session, document_id=str(ref["document_id"]))
        if row is None or row.parcel_id != parcel_id:
            reason = "no such document" if row is None else "a document of another parcel"
            problems.append({"field": f"{where}.document_id", "reason": reason})
            continue
        if ref["kind"] != row.kind:
            problems.append(
                {"field": f"{where}.kind", "reason": f"the document was uploaded as {row.kind}"}
            )
            continue
        cited.append(
            CitedDocument(
                document_id=row.document_id, kind=DocumentKind(row.kind), sha256=row.sha256
            )
        )
    if problems:
        raise BodyProblem("cited documents cannot be used", problems)
    return cited


def _sample_problems(samples: Any) -> list[dict[str, Any]]:
    problems = gb_standards.sample_problems(samples)
    return [
        {
            "field": f"samples[{p['index']}].{p['field']}" if p["index"] is not None else "samples",
            "reason": p["reason"] + _suggestion(p),
        }
        for p in problems
    ]


def _suggestion(problem: dict[str, Any]) -> str:
    if problem["field"] != "item" or not isinstance(problem["value"], str):
        return ""
    close = item_names.suggest(problem["value"])
    return f" (closest: {'; '.join(close)})" if close else ""


def lab_samples(
    store: DocumentStore, cited: list[CitedDocument]
) -> tuple[list[dict[str, Any]], str] | None:
    """Samples from the first cited lab_results spreadsheet, every bad row reported."""
    lab = next((d for d in cited if d.kind == DocumentKind.lab_results), None)
    if lab is None:
        return None
    try:
        with store.open(lab.sha256) as stream:
            data = stream.read()
    except NotStored:
        raise BodyProblem(
            "the lab results file is missing", _field("documents", "not in the store")
        ) from None
    try:
        samples = lab_results.parse_lab_results(data)
    except lab_results.LabResultsError as exc:
        fields = [
            {
                "field": f"lab_results.row[{p['row']}].{p['column'] or 'file'}",
                "reason": p["reason"],
                "row": p["row"],
                "column": p["column"],
                "value": p["value"],
            }
            for p in exc.problems
        ]
        raise BodyProblem(exc.message, fields) from None
    return [{k: v for k, v in s.items() if v is not None} for s in samples], lab.document_id


def store_samples(
    store: DocumentStore, samples: list[dict[str, Any]], source: str | None, policy: Policy
) -> SamplesRef:
    """Samples once, as canonical JSON whose SHA-256 the decisions record."""
    blob = store.put(canonical_json(samples), max_bytes=max(1, policy.max_samples) * 2_000)
    return SamplesRef(sha256=blob.sha256, count=len(samples), source=source)


def figures_from(samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An evaluator's figures from a lab file: the highest value of each item (R8)."""
    highest: dict[str, float] = {}
    for sample in samples:
        highest[sample["item"]] = max(
            highest.get(sample["item"], 0.0), float(sample["value_mg_kg"])
        )
    return [{"item": item, "value_mg_kg": value} for item, value in highest.items()]


def request_for(
    *,
    parcel_id: str,
    action: Action,
    raw: bytes,
    caller: Actor,
    key: str | None,
    visit: int | None,
    session: Session,
    store: DocumentStore,
    policy: Policy,
    lift: bool = True,
) -> ActionRequest:
    """The unsigned request; body problems ride along to be reported after auth. `size`
    is what the history will hold of the body (the policy's per-action limit). A parcel
    of the first procedure takes its body as it always did (`lift=False`): samples
    inline, no documents."""
    size = len(raw)
    key_digest = idempotency_digest(caller, key)
    base: dict[str, Any] = {
        "actor": caller,
        "visit": visit,
        "key": key_digest,
        "size": size,
        "issued_at": datetime.now(UTC),
    }
    try:
        body = parse_body(raw)
        if "visit" in body:
            visit = _visit(body.pop("visit"), visit)
            base["visit"] = visit
        if not lift:
            return ActionRequest(body=body, **base)
        documents = cite(session, parcel_id, body.pop("documents", []))
        samples = None
        if action in SAMPLE_ACTIONS or action == Action.evaluation:
            samples = _samples(action, body, documents, store, policy)
        # What the history will hold of the body (samples and citations lifted out).
        base["size"] = len(canonical_json(body))
        return ActionRequest(body=body, documents=documents, samples=samples, **base)
    except BodyProblem as problem:
        return ActionRequest(body={}, body_error=str(problem), problems=problem.fields, **base)


def _visit(value: Any, header: int | None) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BodyProblem("visit must be a positive integer", _field("visit", "a positive integer"))
    if header is not None and header != value:
        raise BodyProblem(
            "the body and If-Match name different visits", _field("visit", "differs from If-Match")
        )
    return value


def _samples(
    action: Action,
    body: dict[str, Any],
    documents: list[CitedDocument],
    store: DocumentStore,
    policy: Policy,
) -> SamplesRef | None:
    inline = body.pop("samples", None)
    from_lab = lab_samples(store, documents)
    if inline and from_lab:
        raise BodyProblem(
            "send samples or a lab_results document, not both", _field("samples", "both given")
        )
    if action == Action.evaluation:
        if from_lab is not None:
            if body.get("results"):
                raise BodyProblem(
                    "send results or a lab_results document, not both",
                    _field("results", "both given"),
                )
            body["results"] = figures_from(from_lab[0])
        return None
    samples, source = (inline, None) if inline is not None else (from_lab or (None, None))
    if samples is None:
        return None
    if not isinstance(samples, list):
        raise BodyProblem("samples must be a list", _field("samples", "expected a list"))
    if len(samples) > policy.max_samples:
        reason = f"at most {policy.max_samples} samples per report (policy max_samples)"
        raise BodyProblem(reason, _field("samples", reason))
    problems = _sample_problems(samples)
    if problems:
        listed = "; ".join(f"{p['field']}: {p['reason']}" for p in problems[:5])
        raise BodyProblem(f"{len(problems)} samples cannot be used: {listed}", problems)
    return store_samples(store, samples, source, policy)


def idempotency_digest(caller: Actor, key: str | None) -> str | None:
    """The key as the parcel remembers it: per caller, never the key itself."""
    if not key:
        return None
    who = "\x1f".join(
        (caller.role.value, caller.district or "", caller.party or "", caller.subject, key)
    )
    return hashlib.sha256(who.encode()).hexdigest()[:32]


def update_id(action: Action, request: ActionRequest) -> str | None:
    """Temporal applies an update id once and answers a repeat with the first outcome,
    without running the validator again: the id names caller, key and body, so only an
    exact retry is deduplicated; the same key with another body reaches the gate (409)."""
    if request.key is None:
        return None
    return f"{action.value}:{request.key}:{request.digest()[:16]}"


def sign(
    ring: signing.KeyRing, workflow_id: str, action: Action, request: ActionRequest
) -> ActionRequest:
    return signing.sign(ring, workflow_id, action.value, request)
