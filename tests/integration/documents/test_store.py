"""One set of store tests, run on both backends: a directory, and S3 over the network.

S3 is moto's real S3-protocol server on a loopback port (no in-process mock): it is started
once for the module and stopped, port closed, at the end. Each S3 test gets its own bucket,
so "nothing left behind" can list the whole bucket, pending multipart uploads included.
"""

from __future__ import annotations

import errno
import hashlib
import io
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

import boto3
import pytest
from botocore.config import Config
from moto.server import ThreadedMotoServer

from documents import (
    BadDigest,
    BadKey,
    BadRange,
    DocumentStore,
    Empty,
    FileStore,
    NotStored,
    StoreUnavailable,
    TooLarge,
    open_store,
)
from documents.open_store import ENDPOINT_ENV
from documents.s3 import MIN_PART_BYTES, S3Store, make_client
from documents.store import STALE_TMP_SECONDS

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A small document (one S3 request) and one of two full parts plus a tail (multipart).
SMALL = random.Random(1).randbytes(200 * 1024)
LARGE = random.Random(2).randbytes(2 * MIN_PART_BYTES + 12345)
PAYLOADS = pytest.mark.parametrize("payload", [SMALL, LARGE], ids=["small", "multipart"])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 and a free port, with throwaway credentials."""
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("AWS_")]:
            env.delenv(name)
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("AWS_CONFIG_FILE", os.devnull)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((host, port), timeout=1).close()


@pytest.fixture(scope="module")
def s3_client(s3_endpoint: str) -> S3Client:
    """Shared by the tests' stores: a client per store costs 0.1 s, a session's set-up."""
    return make_client(s3_endpoint)


@dataclass
class Backend:
    store: DocumentStore
    prefix: str  # where the store's layout starts, as contents() spells it
    contents: Callable[[], list[str]]  # everything the backend holds, temp files included

    def blob(self, sha256: str) -> str:
        return f"{self.prefix}sha256/{sha256[:2]}/{sha256[2:]}"


def file_backend(tmp_path: Path) -> Backend:
    root = tmp_path / "documents"

    def contents() -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    return Backend(FileStore(root), "", contents)


def s3_backend(client: S3Client) -> Backend:
    bucket = f"landflow-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)

    def contents() -> list[str]:
        objects = client.list_objects_v2(Bucket=bucket).get("Contents", [])
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return sorted([o["Key"] for o in objects] + [f"upload:{u['Key']}" for u in uploads])

    store = S3Store(f"s3://{bucket}/landflow/docs", client=client, part_bytes=MIN_PART_BYTES)
    return Backend(store, "landflow/docs/", contents)


@pytest.fixture(params=["file", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "file":
        return file_backend(tmp_path)
    return s3_backend(request.getfixturevalue("s3_client"))


class FailingSource:
    """An upload whose connection drops: read() raises after `fail_after` bytes."""

    def __init__(self, data: bytes, fail_after: int, error: BaseException) -> None:
        self._data = data
        self._fail_after = fail_after
        self._error = error
        self._sent = 0

    def read(self, size: int = -1) -> bytes:
        if self._sent >= self._fail_after:
            raise self._error
        chunk = self._data[self._sent : self._sent + min(size, 256 * 1024)]
        self._sent += len(chunk)
        return chunk


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@PAYLOADS
def test_put_read_back_and_dedupe(backend: Backend, payload: bytes) -> None:
    store = backend.store
    first = store.put(payload, max_bytes=len(payload))  # exactly the limit is allowed
    assert (first.sha256, first.size, first.created) == (sha(payload), len(payload), True)
    assert store.exists(first.sha256)
    assert store.size(first.sha256) == len(payload)
    with store.open(first.sha256) as blob:
        assert blob.read() == payload

    again = store.put(io.BytesIO(payload), max_bytes=10**9)
    assert (again.sha256, again.size, again.created) == (first.sha256, len(payload), False)
    assert backend.contents() == [backend.blob(first.sha256)]


@PAYLOADS
def test_ranged_reads(backend: Backend, payload: bytes) -> None:
    digest = backend.store.put(payload, max_bytes=len(payload)).sha256
    last = len(payload) - 1
    middle = len(payload) // 2
    read = backend.store.read_range
    assert read(digest, 0, 0) == payload[:1]
    assert read(digest, middle, middle + 99) == payload[middle : middle + 100]
    assert read(digest, last, last) == payload[-1:]
    assert read(digest, 0, last) == payload
    assert read(digest, last - 1, last + 1000) == payload[-2:]  # clamped, as HTTP does
    if len(payload) > MIN_PART_BYTES:
        seam = MIN_PART_BYTES - 5  # across the first two parts of the multipart upload
        assert read(digest, seam, seam + 9) == payload[seam : seam + 10]
    for start, end in [(len(payload), len(payload) + 10), (5, 4), (-1, 3)]:
        with pytest.raises(BadRange):
            read(digest, start, end)


@PAYLOADS
def test_too_large_leaves_nothing(backend: Backend, payload: bytes) -> None:
    with pytest.raises(TooLarge) as refused:
        backend.store.put(payload, max_bytes=len(payload) - 1)
    assert refused.value.limit == len(payload) - 1
    assert backend.contents() == []
    assert not backend.store.exists(sha(payload))


def test_empty_is_refused(backend: Backend) -> None:
    for source in (b"", io.BytesIO()):
        with pytest.raises(Empty):
            backend.store.put(source, max_bytes=100)
    assert backend.contents() == []


def test_limit_must_be_positive(backend: Backend) -> None:
    with pytest.raises(ValueError):
        backend.store.put(b"x", max_bytes=0)


@PAYLOADS
@pytest.mark.parametrize("error", [ConnectionResetError("client went away"), KeyboardInterrupt()])
def test_interrupted_upload_leaves_nothing(
    backend: Backend, payload: bytes, error: BaseException
) -> None:
    # Past the first part for the multipart payload, so an S3 part has been uploaded.
    source = FailingSource(payload, fail_after=len(payload) - 1000, error=error)
    with pytest.raises(type(error)):  # the source's own error, not wrapped
        backend.store.put(cast(BinaryIO, source), max_bytes=10**9)
    assert backend.contents() == []
    assert not backend.store.exists(sha(payload))


def test_not_stored(backend: Backend) -> None:
    missing = sha(b"never stored")
    assert not backend.store.exists(missing)
    with pytest.raises(NotStored) as absent:
        backend.store.open(missing)
    assert absent.value.sha256 == missing
    with pytest.raises(NotStored):
        backend.store.size(missing)
    with pytest.raises(NotStored):
        backend.store.read_range(missing, 0, 10)


BAD_DIGESTS = [
    "",
    "../" * 20,
    "ab/../../../../etc/passwd",
    sha(b"x").upper(),
    sha(b"x")[:63],
    sha(b"x") + "0",
    sha(b"x")[:62] + "/x",
    sha(b"x") + "\n",
    "g" * 64,
    "０" * 64,  # full-width digits are \d in some regex flavours
]


@pytest.mark.parametrize("bad", BAD_DIGESTS)
def test_bad_sha256_refused(backend: Backend, bad: str) -> None:
    store = backend.store
    calls: list[Callable[[], object]] = [
        lambda: store.open(bad),
        lambda: store.size(bad),
        lambda: store.exists(bad),
        lambda: store.read_range(bad, 0, 1),
    ]
    for call in calls:
        with pytest.raises(BadDigest):
            call()


def test_meta_put_get_list(backend: Backend) -> None:
    store = backend.store
    store.put_meta("meta/P-2024-001/doc_b.json", b'{"name": "b"}')
    store.put_meta("meta/P-2024-001/doc_a.json", b'{"name": "a"}')
    store.put_meta("meta/P-2024-0010/doc_c.json", b"{}")
    store.put_meta("meta/P-2024-001/doc_a.json", '{"name": "调查报告"}'.encode())
    assert store.get_meta("meta/P-2024-001/doc_a.json") == '{"name": "调查报告"}'.encode()
    assert store.get_meta("meta/P-2024-001/missing.json") is None
    assert store.get_meta("meta/P-2024-001") is None  # a "directory" is no sidecar
    assert list(store.list_meta("meta/P-2024-001/")) == [
        "meta/P-2024-001/doc_a.json",
        "meta/P-2024-001/doc_b.json",
    ]
    # A plain string prefix, as S3's: P-2024-001 also matches P-2024-0010.
    assert list(store.list_meta("meta/P-2024-001")) == [
        "meta/P-2024-001/doc_a.json",
        "meta/P-2024-001/doc_b.json",
        "meta/P-2024-0010/doc_c.json",
    ]
    assert list(store.list_meta("meta/nothing/")) == []
    assert len(list(store.list_meta("meta/"))) == 3
    assert not [k for k in backend.contents() if "tmp" in k]


@pytest.mark.parametrize(
    "key",
    [
        "meta",
        "meta/",
        "../meta/x.json",
        "/meta/x.json",
        "meta/../sha256/ab/x",
        "meta/./x.json",
        "meta/.hidden",
        "meta//x.json",
        "meta/a b.json",
        "meta/报告.json",
        "meta/x\\..\\y",
        "sha256/ab/cdef",
        "tmp/x",
        "meta/" + "a" * 600,
    ],
)
def test_bad_meta_keys_refused(backend: Backend, key: str) -> None:
    with pytest.raises(BadKey):
        backend.store.put_meta(key, b"{}")
    with pytest.raises(BadKey):
        backend.store.get_meta(key)
    assert backend.contents() == []


@pytest.mark.parametrize("prefix", ["", "x/", "../", "meta/../", "/meta/", "sha256/"])
def test_bad_meta_prefixes_refused(backend: Backend, prefix: str) -> None:
    with pytest.raises(BadKey):
        list(backend.store.list_meta(prefix))


def test_meta_size_is_limited(backend: Backend) -> None:
    with pytest.raises(TooLarge):
        backend.store.put_meta("meta/P1/big.json", b" " * (1024 * 1024 + 1))


@pytest.mark.parametrize(
    ("payload", "writers"), [(SMALL, 8), (LARGE, 3)], ids=["small", "multipart"]
)
def test_concurrent_puts_of_the_same_bytes(backend: Backend, payload: bytes, writers: int) -> None:
    with ThreadPoolExecutor(writers) as pool:
        results = list(
            pool.map(lambda _: backend.store.put(payload, max_bytes=10**9), range(writers))
        )
    assert {r.sha256 for r in results} == {sha(payload)}
    assert backend.contents() == [backend.blob(sha(payload))]
    created = sum(r.created for r in results)
    # The directory publishes with a hard link, exact; two S3 writers may both write it.
    assert created == 1 if isinstance(backend.store, FileStore) else created >= 1


# --- backend-specific ------------------------------------------------------------------


def test_file_store_on_a_file_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "not-a-dir").write_bytes(b"")
    with pytest.raises(StoreUnavailable, match="LANDFLOW_DOCUMENTS_DIR"):
        FileStore(tmp_path / "not-a-dir")


def test_file_store_sweeps_stale_temp_files(tmp_path: Path) -> None:
    FileStore(tmp_path)
    stale, fresh = tmp_path / "tmp" / "put-stale", tmp_path / "tmp" / "put-fresh"
    stale.write_bytes(b"left by a killed process")
    fresh.write_bytes(b"another process is writing this")
    old = time.time() - STALE_TMP_SECONDS - 60
    os.utime(stale, (old, old))
    FileStore(tmp_path)
    assert not stale.exists() and fresh.exists()


def test_file_store_layout(tmp_path: Path) -> None:
    digest = FileStore(tmp_path).put(b"hello", max_bytes=5).sha256
    assert (tmp_path / "sha256" / digest[:2] / digest[2:]).read_bytes() == b"hello"


def test_file_store_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store = FileStore(tmp_path)
    blob = store.put(b"hello", max_bytes=5)
    assert blob.created and store.open(blob.sha256).read() == b"hello"
    assert not store.put(b"hello", max_bytes=5).created
    assert not list((tmp_path / "tmp").iterdir())


def test_s3_missing_bucket_is_unavailable(s3_endpoint: str) -> None:
    store = S3Store("s3://landflow-no-such-bucket/docs", endpoint_url=s3_endpoint)
    with pytest.raises(StoreUnavailable, match="landflow-no-such-bucket"):
        store.put(b"hello", max_bytes=100)


def test_s3_endpoint_down_is_unavailable(s3_endpoint: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    client = boto3.client(
        "s3", endpoint_url=closed, config=Config(retries={"max_attempts": 1}, connect_timeout=1)
    )
    store = S3Store("s3://landflow-docs/x", client=client)
    with pytest.raises(StoreUnavailable, match="LANDFLOW_DOCUMENTS_ENDPOINT"):
        store.exists(sha(b"x"))


@pytest.mark.parametrize(
    "url", ["s3://", "s3:///docs", "s3://bucket/docs?x=1", "https://bucket/docs"]
)
def test_s3_bad_url_is_unavailable(url: str) -> None:
    with pytest.raises(StoreUnavailable, match="LANDFLOW_DOCUMENTS_URL"):
        S3Store(url, client=object())  # type: ignore[arg-type]


def test_s3_part_size_has_a_floor() -> None:
    with pytest.raises(ValueError):
        S3Store("s3://bucket/docs", client=object(), part_bytes=MIN_PART_BYTES - 1)  # type: ignore[arg-type]


def test_s3_bucket_root_without_prefix(s3_endpoint: str, s3_client: S3Client) -> None:
    bucket = f"landflow-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    store = S3Store(f"s3://{bucket}", endpoint_url=s3_endpoint)
    digest = store.put(b"hello", max_bytes=5).sha256
    store.put_meta("meta/P1/a.json", b"{}")
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert sorted(keys) == ["meta/P1/a.json", f"sha256/{digest[:2]}/{digest[2:]}"]
    assert list(store.list_meta("meta/")) == ["meta/P1/a.json"]


def test_open_store_s3_with_endpoint_from_env(
    s3_endpoint: str, s3_client: S3Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = f"landflow-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    monkeypatch.setenv(ENDPOINT_ENV, s3_endpoint)
    store = open_store(f"s3://{bucket}/docs")
    assert isinstance(store, S3Store)
    digest = store.put(b"hello", max_bytes=5).sha256
    assert s3_client.get_object(Bucket=bucket, Key=f"docs/sha256/{digest[:2]}/{digest[2:]}")


def test_open_store_path_and_refused_schemes(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path / "docs")), FileStore)
    assert (tmp_path / "docs" / "sha256").is_dir()
    for url in ("gs://bucket/docs", "file:///srv/docs", "http://minio:9000/docs"):
        with pytest.raises(StoreUnavailable):
            open_store(url)
