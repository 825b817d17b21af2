"""Document storage: content-addressed blobs, content sniffing, safe file names, limits.

The workflow history cites documents by SHA-256 only; the bytes live in a DocumentStore
(`open_store` picks a directory or an S3 bucket).
"""

from documents.open_store import open_store
from documents.store import (
    BadDigest,
    BadKey,
    BadRange,
    DocumentStore,
    Empty,
    FileStore,
    NotStored,
    StoredBlob,
    StoreError,
    StoreUnavailable,
    TooLarge,
)

__all__ = [
    "BadDigest",
    "BadKey",
    "BadRange",
    "DocumentStore",
    "Empty",
    "FileStore",
    "NotStored",
    "StoreError",
    "StoreUnavailable",
    "StoredBlob",
    "TooLarge",
    "open_store",
]
