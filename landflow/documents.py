"""Document kinds and how an action cites a document.

Every step of the procedure is a document (DOMAIN.md); the history keeps, for each
action, the id, kind and SHA-256 of the documents it cites, never their bytes.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum

from pydantic import BaseModel, Field

SHA256_PATTERN = r"^[0-9a-f]{64}$"
DOCUMENT_ID_PATTERN = r"^doc_[0-9a-f]{24}$"


class DocumentKind(StrEnum):
    investigation_report = "investigation_report"
    risk_assessment_report = "risk_assessment_report"
    review_opinion = "review_opinion"
    remediation_plan = "remediation_plan"
    transport_plan = "transport_plan"
    notice_board_photo = "notice_board_photo"
    monitoring_report = "monitoring_report"
    effect_evaluation_report = "effect_evaluation_report"
    determination = "determination"
    lab_results = "lab_results"
    other = "other"


DOCUMENT_KIND_ZH: dict[DocumentKind, str] = {
    DocumentKind.investigation_report: "土壤污染状况调查报告",
    DocumentKind.risk_assessment_report: "土壤污染风险评估报告",
    DocumentKind.review_opinion: "评审意见",
    DocumentKind.remediation_plan: "修复方案",
    DocumentKind.transport_plan: "污染土壤转运计划",
    DocumentKind.notice_board_photo: "公告牌照片",
    DocumentKind.monitoring_report: "监测报告",
    DocumentKind.effect_evaluation_report: "效果评估报告",
    DocumentKind.determination: "责任人认定意见",
    DocumentKind.lab_results: "检测结果",
    DocumentKind.other: "其他",
}


def document_id(parcel_id: str, sha256: str) -> str:
    """One document per parcel and content: the same bytes uploaded twice are one document."""
    return "doc_" + hashlib.sha256(f"{parcel_id}\x1f{sha256}".encode()).hexdigest()[:24]


class DocumentRef(BaseModel):
    """How a client cites an uploaded document in an action body."""

    model_config = {"extra": "forbid"}
    document_id: str = Field(pattern=DOCUMENT_ID_PATTERN)
    kind: DocumentKind


class CitedDocument(DocumentRef):
    """A citation as the history records it: the API resolves the digest before the update."""

    sha256: str = Field(pattern=SHA256_PATTERN)


class SamplesRef(BaseModel):
    """Samples stored once in the document store (as canonical JSON), cited by digest."""

    model_config = {"extra": "forbid"}
    sha256: str = Field(pattern=SHA256_PATTERN)
    count: int = Field(ge=0)
    source: str | None = Field(default=None, description="document_id of a lab_results file")
