"""The document store interface and its filesystem backend.

Blobs are stored once under their SHA-256 and the workflow history cites that digest, never
the bytes. There is deliberately no delete: a recorded history may cite any blob ever
stored, so removing one would make a past decision unverifiable; retention and erasure are
an operator's job, outside this API.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

CHUNK_BYTES = 1024 * 1024
MAX_META_BYTES = 1024 * 1024  # sidecars are small JSON; a bigger one is a caller's bug
STALE_TMP_SECONDS = 24 * 3600  # a temp file this old belongs to a process that died

# What os.link raises on a filesystem without hard links.
_NO_HARD_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}

_SHA256 = re.compile(r"[0-9a-f]{64}")
# Same shape as a parcel id: each segment starts with a letter or digit, so "." and ".."
# (and hidden files) can never be spelled, whatever the platform.
_SEGMENT = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_META_KEY = re.compile(rf"meta(?:/{_SEGMENT})+")
_META_PREFIX = re.compile(rf"meta/(?:{_SEGMENT}/)*(?:{_SEGMENT})?")
_MAX_KEY_CHARS = 512


class StoreError(Exception):
    """Base of everything a document store raises on purpose."""


class TooLarge(StoreError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"document is larger than the limit of {limit} bytes")
        self.limit = limit


class Empty(StoreError):
    def __init__(self) -> None:
        super().__init__("document is empty")


class NotStored(StoreError):
    def __init__(self, sha256: str, message: str | None = None) -> None:
        super().__init__(message or f"no document stored with sha256 {sha256}")
        self.sha256 = sha256


class BadDigest(NotStored, ValueError):
    """A string that is not 64 lowercase hex digits names no blob; it is never used in a path."""

    def __init__(self, sha256: str) -> None:
        super().__init__(sha256, f"not a sha256 digest (64 lowercase hex digits): {sha256!r}")


class BadKey(StoreError, ValueError):
    """A metadata key or prefix outside the path-safe `meta/<segment>/...` shape."""


class BadRange(StoreError, ValueError):
    """A byte range that selects nothing of the blob (HTTP 416)."""


class StoreUnavailable(StoreError):
    """The backend is down or misconfigured; the message names what and the fix."""


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    created: bool  # False when the same bytes were already stored


class DocumentStore(Protocol):
    """Content-addressed blobs plus small metadata sidecars.

    `put` streams and hashes while writing, and a blob becomes visible under its digest only
    once complete and within `max_bytes`: a refused or interrupted upload leaves nothing.
    """

    def put(self, source: BinaryIO | bytes, *, max_bytes: int) -> StoredBlob: ...
    def open(self, sha256: str) -> BinaryIO: ...
    def read_range(self, sha256: str, start: int, end_inclusive: int) -> bytes: ...
    def size(self, sha256: str) -> int: ...
    def exists(self, sha256: str) -> bool: ...
    def put_meta(self, key: str, data: bytes) -> None: ...
    def get_meta(self, key: str) -> bytes | None: ...
    def list_meta(self, prefix: str) -> Iterator[str]: ...


def check_sha256(sha256: str) -> str:
    """The digest itself, or BadDigest: only this shape is ever joined into a path or key."""
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise BadDigest(sha256)
    return sha256


def check_meta_key(key: str) -> str:
    if len(key) > _MAX_KEY_CHARS or not _META_KEY.fullmatch(key):
        raise BadKey(f"metadata key must look like meta/<parcel>/<name>.json: {key!r}")
    return key


def check_meta_prefix(prefix: str) -> str:
    if len(prefix) > _MAX_KEY_CHARS or not _META_PREFIX.fullmatch(prefix):
        raise BadKey(f"metadata prefix must start with meta/ and be path-safe: {prefix!r}")
    return prefix


def check_meta_data(data: bytes) -> bytes:
    if len(data) > MAX_META_BYTES:
        raise TooLarge(MAX_META_BYTES)
    return data


def check_range(start: int, end_inclusive: int) -> None:
    if start < 0 or end_inclusive < start:
        raise BadRange(f"bad byte range {start}-{end_inclusive}")


def check_limit(max_bytes: int) -> None:
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be positive, got {max_bytes}")


def read_chunks(
    source: BinaryIO | bytes, max_bytes: int, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[bytes]:
    """Chunks of `source`, raising TooLarge as soon as more than `max_bytes` were read.

    Reading stops there, so a client sending far too much is not read to its end.
    """
    stream: BinaryIO = io.BytesIO(source) if isinstance(source, bytes | bytearray) else source
    total = 0
    while chunk := stream.read(chunk_bytes):
        total += len(chunk)
        if total > max_bytes:
            raise TooLarge(max_bytes)
        yield chunk


@contextlib.contextmanager
def _filesystem(what: Path) -> Iterator[None]:
    """Our own filesystem failures (disk full, permissions) mean the store is unavailable."""
    try:
        yield
    except OSError as err:
        raise StoreUnavailable(
            f"document directory {what} failed: {err}; point LANDFLOW_DOCUMENTS_DIR at a "
            "writable directory with free space"
        ) from err


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore:
    """Blobs at `root/sha256/ab/cdef...`, sidecars at `root/meta/...`, temp files in `root/tmp/`.

    Files are written in `root/tmp/` (same filesystem, so publishing is atomic), fsync'd, and
    hard-linked into place only when complete: the link fails if the blob exists, which makes
    `created` exact even for concurrent writers. Where the filesystem has no hard links (some
    SMB mounts) it is `os.replace`d instead. The directory is fsync'd too, since the history
    cites the digest as soon as `put` returns.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._blobs = self.root / "sha256"
        self._meta = self.root / "meta"
        self._tmp = self.root / "tmp"
        with _filesystem(self.root):
            for directory in (self._blobs, self._meta, self._tmp):
                directory.mkdir(parents=True, exist_ok=True)
            self._sweep_tmp()

    def _sweep_tmp(self) -> None:
        """Drop temp files left by a killed process (a SIGKILL skips every cleanup)."""
        cutoff = time.time() - STALE_TMP_SECONDS
        for leftover in self._tmp.iterdir():
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()

    def _blob_path(self, sha256: str) -> Path:
        sha256 = check_sha256(sha256)
        return self._blobs / sha256[:2] / sha256[2:]

    def put(self, source: BinaryIO | bytes, *, max_bytes: int) -> StoredBlob:
        check_limit(max_bytes)
        with _filesystem(self._tmp):
            fd, name = tempfile.mkstemp(dir=self._tmp, prefix="put-")
        tmp = Path(name)
        try:
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd, "wb") as out:
                for chunk in read_chunks(source, max_bytes):  # the source's errors pass as-is
                    digest.update(chunk)
                    size += len(chunk)
                    with _filesystem(tmp):
                        out.write(chunk)
                if size == 0:
                    raise Empty()
                with _filesystem(tmp):
                    out.flush()
                    os.fsync(out.fileno())
            sha256 = digest.hexdigest()
            with _filesystem(self.root):
                created = self._publish(tmp, self._blob_path(sha256))
            return StoredBlob(sha256=sha256, size=size, created=created)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    @staticmethod
    def _publish(tmp: Path, dest: Path) -> bool:
        if dest.exists():
            return False
        if not dest.parent.is_dir():
            dest.parent.mkdir(exist_ok=True)
            _fsync_dir(dest.parent.parent)
        try:
            os.link(tmp, dest)
        except FileExistsError:
            return False
        except OSError as err:
            if err.errno not in _NO_HARD_LINKS:
                raise
            os.replace(tmp, dest)  # same bytes if a racer got there first: only `created` lies
        _fsync_dir(dest.parent)
        return True

    def open(self, sha256: str) -> BinaryIO:
        path = self._blob_path(sha256)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise NotStored(sha256) from None
        except OSError as err:
            raise StoreUnavailable(f"cannot read {path}: {err}") from err

    def read_range(self, sha256: str, start: int, end_inclusive: int) -> bytes:
        """Bytes start..end_inclusive, clamped to the blob's end as HTTP ranges are."""
        check_range(start, end_inclusive)
        with self.open(sha256) as blob:
            if start >= os.fstat(blob.fileno()).st_size:
                raise BadRange(f"range starts at {start}, past the end of {sha256}")
            blob.seek(start)
            return blob.read(end_inclusive - start + 1)

    def size(self, sha256: str) -> int:
        path = self._blob_path(sha256)
        try:
            return path.stat().st_size
        except FileNotFoundError:
            raise NotStored(sha256) from None

    def exists(self, sha256: str) -> bool:
        return self._blob_path(sha256).is_file()

    def put_meta(self, key: str, data: bytes) -> None:
        """Replace the sidecar atomically: readers see the old or the new, never half."""
        dest = self.root / check_meta_key(key)
        check_meta_data(data)
        with _filesystem(self.root):
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=self._tmp, prefix="meta-")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(name, dest)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name)

    def get_meta(self, key: str) -> bytes | None:
        try:
            return (self.root / check_meta_key(key)).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def list_meta(self, prefix: str) -> Iterator[str]:
        """Keys starting with `prefix` (a plain string prefix, as S3 has), sorted."""
        check_meta_prefix(prefix)
        base = self.root / prefix.rpartition("/")[0]
        keys = (p.relative_to(self.root).as_posix() for p in base.rglob("*") if p.is_file())
        yield from sorted(k for k in keys if k.startswith(prefix))
