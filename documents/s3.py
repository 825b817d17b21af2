"""The S3 backend: `s3://bucket/prefix` on AWS or any S3-protocol server.

It talks S3 through boto3, AWS's own SDK: it is actively maintained, signs requests (SigV4),
retries, finds credentials the usual ways (AWS_* env vars, profiles, instance or task roles)
and is the client every S3-compatible server (MinIO, Ceph, OSS, COS, moto) is tested
against; the alternatives are thinner wrappers around it or tied to one server.

Layout under the prefix: blobs at `sha256/ab/cdef...`, sidecars at `meta/...`, uploads in
progress at `tmp/<uuid>`. Give the bucket a lifecycle rule that expires `tmp/` objects and
aborts incomplete multipart uploads after a day: a process killed mid-upload cannot clean up.
"""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO, cast
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from documents.store import (
    BadRange,
    Empty,
    NotStored,
    StoredBlob,
    StoreUnavailable,
    check_limit,
    check_meta_data,
    check_meta_key,
    check_meta_prefix,
    check_range,
    check_sha256,
    read_chunks,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's smallest multipart part (all but the last)
DEFAULT_PART_BYTES = 8 * 1024 * 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}
_REFUSED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}


def make_client(endpoint_url: str | None = None) -> S3Client:
    """The client S3Store makes for itself; one can be shared by many stores (it is thread-safe).

    Path-style addressing for a custom endpoint: MinIO, moto and friends are rarely set up
    for virtual-host buckets (bucket.host). A session of its own, since boto3's default
    session is not thread-safe (clients are).
    """
    config = Config(
        connect_timeout=5,
        read_timeout=60,
        retries={"mode": "standard", "max_attempts": 3},
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


class S3Store:
    """A DocumentStore on S3, with the semantics of FileStore.

    A document that fits in one part is hashed in memory and PUT under its digest, which S3
    makes visible atomically. A larger one goes to `tmp/<uuid>` as a multipart upload while
    it is hashed, and is copied under its digest only once complete and within the limit;
    the temporary upload or object is removed on any failure. Two concurrent uploads of the
    same new bytes may both report `created=True`: both wrote identical bytes to one key.
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        client: S3Client | None = None,
        part_bytes: int = DEFAULT_PART_BYTES,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise StoreUnavailable(
                f"document store URL {url!r} is not s3://bucket/prefix: fix LANDFLOW_DOCUMENTS_URL"
            )
        if part_bytes < MIN_PART_BYTES:
            raise ValueError(f"part_bytes must be at least {MIN_PART_BYTES} (S3's minimum)")
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.url = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self._part_bytes = part_bytes
        self._client = client or make_client(endpoint_url)
        self._endpoint = endpoint_url or self._client.meta.endpoint_url

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _blob_key(self, sha256: str) -> str:
        sha256 = check_sha256(sha256)
        return self._key(f"sha256/{sha256[:2]}/{sha256[2:]}")

    @contextlib.contextmanager
    def _calls(self, what: str) -> Iterator[None]:
        """S3 and network failures as StoreUnavailable, naming what failed and the fix."""
        try:
            yield
        except ClientError as err:
            code = _code(err)
            if code == "NoSuchBucket":
                fix = f"create bucket {self.bucket!r} or fix LANDFLOW_DOCUMENTS_URL"
            elif code in _REFUSED:
                fix = (
                    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the role) and that it "
                    "may s3:GetObject, s3:PutObject, s3:DeleteObject, s3:ListBucket and "
                    "s3:AbortMultipartUpload there"
                )
            else:
                fix = "check the S3 service and the LANDFLOW_DOCUMENTS_URL/_ENDPOINT settings"
            raise StoreUnavailable(f"S3 {what} on {self.url} failed ({code}): {fix}") from err
        except NoCredentialsError as err:
            raise StoreUnavailable(
                f"no AWS credentials for {self.url}: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or run with a role)"
            ) from err
        except BotoCoreError as err:
            raise StoreUnavailable(
                f"S3 {what} on {self.url} via {self._endpoint} failed: {err}; check that the "
                "endpoint is up and LANDFLOW_DOCUMENTS_ENDPOINT is right"
            ) from err

    def _head(self, key: str) -> dict[str, Any] | None:
        with self._calls("HEAD"):
            try:
                return cast(dict[str, Any], self._client.head_object(Bucket=self.bucket, Key=key))
            except ClientError as err:
                if _code(err) in _MISSING:
                    return None
                raise

    def put(self, source: BinaryIO | bytes, *, max_bytes: int) -> StoredBlob:
        check_limit(max_bytes)
        digest = hashlib.sha256()
        size = 0
        buffer = bytearray()
        upload: _TempUpload | None = None
        try:
            for chunk in read_chunks(source, max_bytes):
                digest.update(chunk)
                size += len(chunk)
                buffer += chunk
                while len(buffer) >= self._part_bytes:
                    upload = upload or _TempUpload(self, self._key(f"tmp/{uuid.uuid4().hex}"))
                    upload.add_part(bytes(buffer[: self._part_bytes]))
                    del buffer[: self._part_bytes]
            if size == 0:
                raise Empty()
            sha256 = digest.hexdigest()
            key = self._blob_key(sha256)
            if self._head(key) is not None:
                return StoredBlob(sha256=sha256, size=size, created=False)
            with self._calls("PUT"):
                if upload is None:
                    self._client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer))
                else:
                    if buffer:
                        upload.add_part(bytes(buffer))
                    upload.complete()
                    self._client.copy({"Bucket": self.bucket, "Key": upload.key}, self.bucket, key)
            return StoredBlob(sha256=sha256, size=size, created=True)
        finally:
            if upload is not None:
                upload.discard()

    def open(self, sha256: str) -> BinaryIO:
        """A forward-only stream of the blob (not seekable: use read_range for parts)."""
        return cast(BinaryIO, self._get(sha256)["Body"])

    def _get(self, sha256: str, byte_range: str | None = None) -> dict[str, Any]:
        key = self._blob_key(sha256)
        extra = {"Range": byte_range} if byte_range else {}
        with self._calls("GET"):
            try:
                return cast(
                    dict[str, Any],
                    self._client.get_object(Bucket=self.bucket, Key=key, **extra),  # type: ignore[arg-type]
                )
            except ClientError as err:
                if _code(err) in _MISSING:
                    raise NotStored(sha256) from None
                if _code(err) == "InvalidRange":
                    raise BadRange(f"range {byte_range} is past the end of {sha256}") from None
                raise

    def read_range(self, sha256: str, start: int, end_inclusive: int) -> bytes:
        """Bytes start..end_inclusive, clamped to the blob's end as HTTP ranges are."""
        check_range(start, end_inclusive)
        body = self._get(sha256, f"bytes={start}-{end_inclusive}")["Body"]
        with self._calls("GET"), body:
            return cast(bytes, body.read())

    def size(self, sha256: str) -> int:
        head = self._head(self._blob_key(sha256))
        if head is None:
            raise NotStored(sha256)
        return int(head["ContentLength"])

    def exists(self, sha256: str) -> bool:
        return self._head(self._blob_key(sha256)) is not None

    def put_meta(self, key: str, data: bytes) -> None:
        check_meta_data(data)
        with self._calls("PUT"):
            self._client.put_object(
                Bucket=self.bucket,
                Key=self._key(check_meta_key(key)),
                Body=data,
                ContentType="application/json",
            )

    def get_meta(self, key: str) -> bytes | None:
        with self._calls("GET"):
            try:
                response = self._client.get_object(
                    Bucket=self.bucket, Key=self._key(check_meta_key(key))
                )
            except ClientError as err:
                if _code(err) in _MISSING:
                    return None
                raise
            with response["Body"] as body:
                return body.read()

    def list_meta(self, prefix: str) -> Iterator[str]:
        """Keys starting with `prefix`, sorted (S3 lists in key order)."""
        full = self._key(check_meta_prefix(prefix))
        strip = len(self._key(""))
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full
        )
        with self._calls("LIST"):
            for page in pages:
                for item in page.get("Contents", []):
                    yield item["Key"][strip:]


class _TempUpload:
    """A multipart upload to a temporary key, which `discard` always removes."""

    def __init__(self, store: S3Store, key: str) -> None:
        self._store = store
        self._client = store._client
        self.key = key
        self._parts: list[dict[str, Any]] = []
        self._completed = False
        # As boto3's own transfer manager does: with checksums on (boto3's default since
        # 1.36) every part carries a CRC32, so the upload must be created as a CRC32 one.
        checksums = getattr(self._client.meta.config, "request_checksum_calculation", None)
        extra = {"ChecksumAlgorithm": "CRC32"} if checksums == "when_supported" else {}
        with store._calls("multipart upload"):
            response = self._client.create_multipart_upload(
                Bucket=store.bucket,
                Key=key,
                **extra,  # type: ignore[arg-type]
            )
        self._upload_id = response["UploadId"]

    def add_part(self, data: bytes) -> None:
        number = len(self._parts) + 1
        with self._store._calls("multipart upload"):
            response = self._client.upload_part(
                Bucket=self._store.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=data,
            )
        # Echo the part's checksum back: S3 refuses to complete a CRC32 upload whose parts'
        # checksums are not listed.
        checksums = {k: v for k, v in response.items() if k.startswith("Checksum")}
        self._parts.append({"PartNumber": number, "ETag": response["ETag"], **checksums})

    def complete(self) -> None:
        self._client.complete_multipart_upload(
            Bucket=self._store.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            MultipartUpload={"Parts": self._parts},  # type: ignore[typeddict-item]
        )
        self._completed = True

    def discard(self) -> None:
        """Best effort: a failure here must not hide the error that led here."""
        with contextlib.suppress(BotoCoreError, ClientError):
            if self._completed:
                self._client.delete_object(Bucket=self._store.bucket, Key=self.key)
            else:
                self._client.abort_multipart_upload(
                    Bucket=self._store.bucket, Key=self.key, UploadId=self._upload_id
                )
