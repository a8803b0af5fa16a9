"""Blobs in an S3-compatible object store (AWS S3, SeaweedFS, MinIO, ...), with boto3.

boto3 is AWS's own client and the best kept; it is blocking, which suits the callers: the
activities run in threads, and the API hands the upload's writes to its threadpool
(``api/uploads.py``). An async client (aioboto3) would not help them and obstore's
multipart writer hides where the parts go.

A blob is streamed as a multipart upload to its final key: each part (``part_size``, at
least S3's 5 MiB) is sent as soon as it is full, so at most one part is held in memory,
and the sha256 is computed on the way. S3 shows a multipart upload at its key only once
it is completed, which ``commit`` does; ``abort`` aborts it. A blob smaller than one part
is sent with one ``put_object`` at commit. Keys are ``S3_PREFIX`` + the location, in the
same form as on the local store (``locations.py``), so events do not say which store.

An upload a crash left unfinished is listed by ``entries`` as ``tmp/<name>``, dated by its
last part, and ``delete`` aborts it: the orphan sweep clears both stores the same way.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from application.ports import BlobEntry, BlobNotFound, StoredBlob
from infrastructure.blobstore.locations import (
    LOCATION,
    TEMPORARY,
    location_of,
    new_name,
    temporary_location_of,
)
from infrastructure.config import Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, PartTypeDef

MIN_PART_SIZE = 5 * 1024 * 1024  # S3's floor for every part but the last
DEFAULT_PART_SIZE = 8 * 1024 * 1024
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Misconfigured(RuntimeError):  # noqa: N818 - says what is wrong
    """The S3 settings name a bucket or credentials the store refuses."""


class S3BlobWriter:
    def __init__(self, client: S3Client, bucket: str, prefix: str, part_size: int) -> None:
        self._client = client
        self._bucket = bucket
        self._name = new_name()
        self._key = prefix + location_of(self._name)
        self._part_size = part_size
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._hash = hashlib.sha256()
        self._size = 0
        self._open = True

    @property
    def size(self) -> int:
        return self._size

    def write(self, chunk: bytes) -> None:
        assert self._open, "blob already committed or aborted"
        self._hash.update(chunk)
        self._size += len(chunk)
        self._buffer += chunk
        while len(self._buffer) >= self._part_size:
            part = bytes(self._buffer[: self._part_size])
            del self._buffer[: self._part_size]
            self._send_part(part)

    def commit(self) -> StoredBlob:
        assert self._open, "blob already committed or aborted"
        if self._upload_id is None:
            self._client.put_object(Bucket=self._bucket, Key=self._key, Body=bytes(self._buffer))
        else:
            if self._buffer:
                self._send_part(bytes(self._buffer))
            self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        self._open = False
        self._buffer = bytearray()
        return StoredBlob(
            location=location_of(self._name), size=self._size, sha256=self._hash.hexdigest()
        )

    def abort(self) -> None:
        if not self._open:
            return
        self._open = False
        self._buffer = bytearray()
        if self._upload_id is None:
            return
        # abort runs while another error is handled (a rejected or failed upload): it must
        # not replace that error. An upload left behind stays listed; the sweep aborts it.
        with contextlib.suppress(BotoCoreError, ClientError):
            self._client.abort_multipart_upload(
                Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
            )

    def _send_part(self, data: bytes) -> None:
        if self._upload_id is None:
            created = self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        sent = self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
        )
        self._parts.append({"ETag": sent["ETag"], "PartNumber": number})


class S3BlobStore:
    """The ``BlobStore`` port on one bucket, under an optional key prefix."""

    def __init__(
        self,
        client: S3Client,
        bucket: str,
        *,
        prefix: str = "",
        part_size: int = DEFAULT_PART_SIZE,
    ) -> None:
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"parts must be at least {MIN_PART_SIZE} bytes (S3's minimum)")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size

    def writer(self) -> S3BlobWriter:
        return S3BlobWriter(self.client, self.bucket, self.prefix, self.part_size)

    def open(self, location: str) -> BinaryIO:
        if not LOCATION.fullmatch(location):
            raise BlobNotFound(f"not a blob location: {location!r}")
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self.prefix + location)
        except ClientError as err:
            if _code(err) in _NOT_FOUND:
                raise BlobNotFound(f"no blob at {location}") from None
            raise
        # The body streams from the connection: an io.IOBase whose read(n), close() and
        # context manager are all the port's readers use.
        return cast(BinaryIO, answer["Body"])

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def verify(self) -> None:
        """Raises ``S3Misconfigured`` when the store answers that the bucket or the
        credentials are wrong: a process stops at start rather than fail every upload. An
        endpoint that does not answer is not refused here: the store may be starting too,
        and readiness (``check``) reports it meanwhile."""
        try:
            self.check()
        except NoCredentialsError:
            raise S3Misconfigured(
                "BLOB_STORE=s3 found no credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY (or give the host a role)"
            ) from None
        except ClientError as err:
            raise S3Misconfigured(
                f"S3_BUCKET {self.bucket!r} cannot be used ({_code(err) or 'refused'}): check "
                "S3_BUCKET, S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        except BotoCoreError:
            pass  # not reachable now; see above

    def entries(self) -> Iterator[BlobEntry]:
        """Completed blobs, then multipart uploads never completed (``tmp/<name>``); keys
        under the prefix that are not locations are not the store's and are never listed."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for page in pages:
            for item in page.get("Contents", []):
                location = item["Key"].removeprefix(self.prefix)
                if LOCATION.fullmatch(location):
                    yield BlobEntry(location, item["Size"], item["LastModified"].timestamp())
        uploads = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        for listing in uploads:
            for upload in listing.get("Uploads", []):
                location = upload["Key"].removeprefix(self.prefix)
                if not LOCATION.fullmatch(location):
                    continue
                size, modified = 0, upload["Initiated"].timestamp()
                # Dated by its last part, as a local temporary file by its last write: an
                # upload still receiving parts is never older than the grace period.
                for part in self._parts_of(upload["Key"], upload["UploadId"]):
                    size += part["Size"]
                    modified = max(modified, part["LastModified"].timestamp())
                name = location.partition("/")[2]
                yield BlobEntry(temporary_location_of(name), size, modified, temporary=True)

    def delete(self, location: str) -> None:
        if LOCATION.fullmatch(location):
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + location)
        elif TEMPORARY.fullmatch(location):
            name = location.partition("/")[2]
            key = self.prefix + location_of(name)
            uploads = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
            for upload in uploads.get("Uploads", []):
                if upload["Key"] == key:
                    self._abort(key, upload["UploadId"])
        else:
            raise BlobNotFound(f"not a blob location: {location!r}")

    def _parts_of(self, key: str, upload_id: str) -> Iterator[PartTypeDef]:
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=key, UploadId=upload_id
        )
        try:
            for page in pages:
                yield from page.get("Parts", [])
        except ClientError as err:
            if _code(err) != "NoSuchUpload":  # completed or aborted meanwhile
                raise

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as err:
            if _code(err) != "NoSuchUpload":  # a missing one is no error
                raise


def s3_blob_store(settings: Settings) -> S3BlobStore:
    """The store the S3 settings name (``BLOB_STORE=s3``); Settings checked them already."""
    assert settings.s3_bucket is not None
    secret = settings.aws_secret_access_key
    client = boto3.client(
        "s3",
        endpoint_url=settings.s3_endpoint_url or None,
        region_name=settings.aws_region or None,
        # None: boto3's own chain (environment, shared files, an instance or task role).
        aws_access_key_id=settings.aws_access_key_id or None,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        config=Config(
            connect_timeout=settings.s3_timeout_seconds,
            read_timeout=settings.s3_timeout_seconds,
            retries={"mode": "standard", "max_attempts": 3},
            # Checksums only where S3 requires them: the CRC32 that boto3 adds by default
            # since 1.36 is refused by several S3-compatible stores; the sha256 computed
            # here is what the pipeline checks.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            # The threads of one process (activities, API threadpool) share this client.
            max_pool_connections=settings.s3_max_connections,
        ),
    )
    store = S3BlobStore(
        client,
        settings.s3_bucket,
        prefix=settings.s3_key_prefix,
        part_size=settings.s3_part_size_mb * 1024 * 1024,
    )
    store.verify()
    return store


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
