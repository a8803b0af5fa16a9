"""Streaming a multipart upload straight into the blob store.

The body is parsed as it arrives (python-multipart's streaming parser) and the ``file``
part is written to the blob store chunk by chunk while its sha256 is computed, so
memory stays flat whatever the size, and an oversized upload is refused with 413 as
soon as it crosses the limit, whether or not it declared a Content-Length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from application.ports import BlobStore, BlobWriter, StoredBlob

FILE_FIELD = b"file"
# Room for the multipart framing and small form fields around the file itself.
FRAMING_ALLOWANCE = 64 * 1024
MAX_PARTS = 16
MAX_HEADER_BYTES = 8 * 1024
MAX_BOUNDARY = 70
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 255
# Printable ASCII, as HTTP header values can carry it unambiguously; a UUID fits well.
_IDEMPOTENCY_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}")


class UploadRejected(Exception):  # noqa: N818 - a domain word
    status_code = 400
    code = "bad_upload"


class UploadTooLarge(UploadRejected):
    status_code = 413
    code = "upload_too_large"


class InvalidIdempotencyKey(UploadRejected):
    code = "invalid_idempotency_key"


class NotMultipart(UploadRejected):
    status_code = 415
    code = "unsupported_media_type"


@dataclass(frozen=True)
class ReceivedUpload:
    filename: str
    content_type: str
    blob: StoredBlob


class _FormReader:
    """The parser's callbacks: routes the ``file`` part into a blob writer."""

    def __init__(self, blob_store: BlobStore, max_file_bytes: int) -> None:
        self._blob_store = blob_store
        self._max_file_bytes = max_file_bytes
        self.parts = 0
        self.ended = False
        self.writer: BlobWriter | None = None
        self.filename: str | None = None
        self.content_type = "application/octet-stream"
        self._in_file = False
        self._headers: dict[bytes, bytes] = {}
        self._field = b""
        self._value = b""

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._part_begin,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._part_data,
            "on_part_end": self._part_end,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise UploadRejected(f"too many form parts (at most {MAX_PARTS})")
        self._headers = {}

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]
        self._check_header_size()

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]
        self._check_header_size()

    def _check_header_size(self) -> None:
        if len(self._field) + len(self._value) > MAX_HEADER_BYTES:
            raise UploadRejected("a form part header is too long")

    def _header_end(self) -> None:
        self._headers[self._field.strip().lower()] = self._value.strip()
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if params.get(b"name") != FILE_FIELD:
            return  # other form fields are accepted and ignored
        if self.writer is not None:
            raise UploadRejected("send one file per request")
        self.filename = params.get(b"filename", b"").decode("utf-8", "replace")
        declared = self._headers.get(b"content-type", b"").decode("latin-1").strip()
        self.content_type = declared or self.content_type
        self.writer = self._blob_store.writer()
        self._in_file = True

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._in_file:
            return
        assert self.writer is not None
        if self.writer.size + (end - start) > self._max_file_bytes:
            raise UploadTooLarge(f"the file is larger than {self._max_file_bytes} bytes")
        self.writer.write(data[start:end])

    def _part_end(self) -> None:
        self._in_file = False

    def _end(self) -> None:
        self.ended = True


def idempotency_key_of(request: Request, tenant: str) -> str | None:
    """The request's ``Idempotency-Key``, scoped to the caller's tenant; None without one.

    Scoped, so that two tenants choosing the same key never share an artifact (the clients
    of one tenant do: a retry may come with another of its keys). A newline separates the
    parts: no tenant name can contain one.
    """
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not _IDEMPOTENCY_KEY.fullmatch(key) or not key.strip():
        raise InvalidIdempotencyKey(
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
        )
    return f"{tenant}\n{key}"


def content_key(tenant: str, sha256: str) -> str:
    """The idempotency key of an upload's content (DEDUPE_BY_SHA256), scoped to the tenant.

    Scoped, so that no tenant learns whether another uploaded a given file. NUL separates
    the parts: no Idempotency-Key can contain one, so the two kinds of key never collide.
    """
    return f"{tenant}\x00sha256\x00{sha256}"


def multipart_boundary(request: Request) -> bytes:
    """The boundary of a ``multipart/form-data`` request; ``UploadRejected`` for any other.

    Read from the headers only, so a retry answered from the record is checked too.
    """
    media_type, params = parse_options_header(request.headers.get("content-type"))
    boundary: bytes | None = params.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise NotMultipart("send the file as multipart/form-data in the field 'file'")
    if len(boundary) > MAX_BOUNDARY:
        # RFC 2046's limit; the parser's work per byte grows with the boundary's length.
        raise UploadRejected(f"malformed multipart boundary (longer than {MAX_BOUNDARY})")
    return boundary


async def receive_upload(
    request: Request, blob_store: BlobStore, *, max_bytes: int
) -> ReceivedUpload:
    """Stores the request's ``file`` part; raises ``UploadRejected`` with the reason."""
    boundary = multipart_boundary(request)
    max_body = max_bytes + FRAMING_ALLOWANCE
    declared_length = request.headers.get("content-length", "")
    if declared_length.isdigit() and int(declared_length) > max_body:
        raise UploadTooLarge(f"the upload is larger than {max_bytes} bytes")

    reader = _FormReader(blob_store, max_bytes)
    try:
        parser = MultipartParser(boundary, reader.callbacks())  # type: ignore[arg-type]
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > max_body:
                raise UploadTooLarge(f"the upload is larger than {max_bytes} bytes")
            # The parser's callbacks write to the blob store, which blocks (a file write,
            # an S3 part upload): off the event loop.
            await run_in_threadpool(parser.write, chunk)
        if not reader.ended:
            raise UploadRejected("the multipart body is incomplete")
        if reader.writer is None:
            raise UploadRejected("the form has no 'file' field")
        if reader.writer.size == 0:
            raise UploadRejected("the file is empty")
        blob = await run_in_threadpool(reader.writer.commit)
    except MultipartParseError as err:
        raise UploadRejected(f"malformed multipart body: {err}") from None
    finally:
        if reader.writer is not None:
            reader.writer.abort()
    return ReceivedUpload(
        filename=reader.filename or "", content_type=reader.content_type, blob=blob
    )
