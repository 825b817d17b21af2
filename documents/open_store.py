"""Pick the document store backend from one setting."""

from __future__ import annotations

import os
import re
from pathlib import Path

from documents.store import DocumentStore, FileStore, StoreUnavailable

ENDPOINT_ENV = "LANDFLOW_DOCUMENTS_ENDPOINT"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def open_store(url_or_path: str, *, endpoint_url: str | None = None) -> DocumentStore:
    """`s3://bucket/prefix` is an S3Store, anything else a directory for a FileStore.

    The S3 endpoint is `endpoint_url`, else $LANDFLOW_DOCUMENTS_ENDPOINT, else boto3's own
    (AWS, or $AWS_ENDPOINT_URL_S3). Any other URL scheme is refused rather than taken for a
    relative directory named "gs:".
    """
    if url_or_path.startswith("s3://"):
        from documents.s3 import S3Store  # boto3 loads only when S3 is used

        return S3Store(url_or_path, endpoint_url=endpoint_url or os.environ.get(ENDPOINT_ENV))
    if _SCHEME.match(url_or_path):
        raise StoreUnavailable(
            f"unsupported document store {url_or_path!r}: use s3://bucket/prefix or a directory"
        )
    return FileStore(Path(url_or_path))
