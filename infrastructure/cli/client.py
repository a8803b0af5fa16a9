"""The HTTP API as the CLI sees it: a few calls, and errors in the words of exit codes.

Synchronous httpx: the CLI does one thing at a time. Uploads are streamed from the file
with a multipart body built here, so memory stays flat and every chunk sent is reported.
"""

from __future__ import annotations

import builtins
import mimetypes
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NoReturn

import httpx

CHUNK = 256 * 1024
# The list route's largest page; longer lists are followed page by page.
MAX_PAGE = 200
# Pauses before an upload's retries (a lost connection, 502, 503, 504); then it gives up.
RETRY_DELAYS = (0.5, 2.0)
# Statuses a proxy or a server answers while it is unavailable for a moment.
_UNAVAILABLE = (502, 503, 504)

View = dict[str, Any]
OnProgress = Callable[[int], None]


class Unreachable(Exception):  # noqa: N818 - the CLI's word for exit code 3
    """The server could not be reached, failed (5xx) or refused the credentials."""


class Interrupted(Unreachable):
    """The request may have gone unanswered: the connection failed, or the server (or a
    proxy before it) was unavailable for a moment. Safe to retry only when idempotent."""


class NotFound(Exception):  # noqa: N818 - the CLI's word for exit code 4
    """There is no such artifact (or it was erased: the message says so)."""


class Refused(Exception):  # noqa: N818 - the CLI's word for exit code 1
    """The server understood the request and refused it (too large, conflict, ...)."""


class ArtifactsClient:
    """``POST /artifacts``, ``GET /artifacts[/{id}]`` and the artifact's results,
    reprocessing, cancelling and deleting, over one connection pool.

    ``api_key``, when given, is sent as a Bearer token on every request.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    def __enter__(self) -> ArtifactsClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def upload(self, path: Path, on_progress: OnProgress | None = None) -> View:
        """Streams the file at ``path``; ``on_progress`` hears the bytes sent so far.

        Sent with an ``Idempotency-Key`` of its own, which the upload's retries reuse: a
        retry after an answer was lost gets the artifact the first attempt created, never a
        second one.
        """
        key = str(uuid.uuid4())
        delays = iter(RETRY_DELAYS)
        while True:
            body, content_type, length = _multipart(path, on_progress or (lambda _: None))
            headers = {
                "Content-Type": content_type,
                "Content-Length": str(length),
                "Idempotency-Key": key,
            }
            try:
                return self._call("POST", "/artifacts", content=body, headers=headers)
            except Interrupted:
                delay = next(delays, None)
                if delay is None:
                    raise
                time.sleep(delay)

    def delete(self, artifact_id: str) -> str:
        """Erases the artifact for good: ``deleted`` (now, or it already was), or
        ``erasing`` (its run in flight is being cancelled first, then it is erased);
        ``NotFound`` for an unknown id."""
        response = self._send("DELETE", f"/artifacts/{_id(artifact_id)}")
        # 410: erased before, which is what was asked.
        if not response.is_success and response.status_code != 410:
            _raise_for(response)
        return "erasing" if response.status_code == 202 else "deleted"

    def gone(self, artifact_id: str) -> bool:
        """True once the artifact no longer answers (erased, or never there)."""
        response = self._send("GET", f"/artifacts/{_id(artifact_id)}")
        if response.status_code == 410:
            # Served no more while its run stops, but gone only once erased.
            return bool(response.json().get("error") != "artifact_erasing")
        if response.status_code == 404:
            return True
        if not response.is_success:
            _raise_for(response)
        return False

    def get(self, artifact_id: str) -> View:
        return self._call("GET", f"/artifacts/{_id(artifact_id)}")

    def list(self, *, status: str | None, mime_type: str | None, limit: int) -> list[View]:
        """Up to ``limit`` artifacts, newest first, following the pages' cursors."""
        items: list[View] = []
        cursor: str | None = None
        while len(items) < limit:
            params = {"status": status, "mime_type": mime_type, "cursor": cursor}
            page = self._call(
                "GET",
                "/artifacts",
                params={
                    "limit": min(MAX_PAGE, limit - len(items)),
                    **{k: v for k, v in params.items() if v is not None},
                },
            )
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        return items

    def reprocess(self, artifact_id: str) -> View:
        return self._call("POST", f"/artifacts/{_id(artifact_id)}/reprocess")

    def cancel(self, artifact_id: str) -> View:
        return self._call("POST", f"/artifacts/{_id(artifact_id)}/cancel")

    # ``builtins.list``: in this class, ``list`` is the method above.
    def dead_letters(self, *, consumer: str | None) -> builtins.list[View]:
        params = {"consumer": consumer} if consumer else {}
        items: builtins.list[View] = self._call("GET", "/dead-letters", params=params)["items"]
        return items

    def retry_dead_letter(self, consumer: str, position: int) -> View:
        return self._call("POST", f"/dead-letters/{consumer}/{position}/retry")

    def items(self, artifact_id: str, name: str, **params: int | None) -> builtins.list[View]:
        """A JSON array result of the artifact (``chunks``, ``pages``), parsed."""
        url = _result_url(artifact_id, name)
        items: builtins.list[View] = self._answer("GET", url, params=_present(params)).json()
        return items

    def download(self, artifact_id: str, name: str, sink: BinaryIO, **params: int | None) -> None:
        """Writes a result of the artifact (``text``, ``markdown``, ``chunks``...) to ``sink``
        as it arrives, byte for byte; nothing is written when the server refuses."""
        url = _result_url(artifact_id, name)
        try:
            with self._http.stream("GET", url, params=_present(params)) as response:
                if not response.is_success:
                    response.read()
                    _raise_for(response)
                for piece in response.iter_bytes(CHUNK):
                    sink.write(piece)
        except httpx.TransportError as err:
            raise Interrupted(f"cannot reach {self._http.base_url}: {err}") from err

    def _call(self, method: str, url: str, **kwargs: Any) -> View:
        body: View = self._answer(method, url, **kwargs).json()
        return body

    def _answer(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, url, **kwargs)
        if not response.is_success:
            _raise_for(response)
        return response

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TransportError as err:
            raise Interrupted(f"cannot reach {self._http.base_url}: {err}") from err


def _raise_for(response: httpx.Response) -> NoReturn:
    detail = _detail(response)
    if response.status_code in (404, 410):
        raise NotFound(detail)
    if response.status_code in _UNAVAILABLE:
        raise Interrupted(f"{response.status_code} from the server: {detail}")
    # A 403 is about the credentials, except the tenant's storage quota: that upload alone
    # is refused, and the others go on.
    quota = response.status_code == 403 and "storage_quota_exceeded" in detail
    if (response.status_code in (401, 403) and not quota) or response.status_code >= 500:
        raise Unreachable(f"{response.status_code} from the server: {detail}")
    raise Refused(detail)


def _result_url(artifact_id: str, name: str) -> str:
    return f"/artifacts/{_id(artifact_id)}/{name}"


def _present(params: dict[str, int | None]) -> dict[str, int]:
    return {key: value for key, value in params.items() if value is not None}


def _id(artifact_id: str) -> str:
    try:
        return str(uuid.UUID(artifact_id))
    except ValueError:
        raise NotFound(f"{artifact_id!r} is not an artifact id") from None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body['error']}: {body['detail']}"
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or response.reason_phrase


def _multipart(path: Path, on_progress: OnProgress) -> tuple[Iterator[bytes], str, int]:
    """A ``multipart/form-data`` body with the file as its ``file`` field, as a stream.

    The filename is escaped as browsers do (``"``, CR and LF percent-encoded), so it can
    never end its header early.
    """
    boundary = uuid.uuid4().hex
    name = path.name.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
    media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: {media_type}\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = path.stat().st_size

    def body() -> Iterator[bytes]:
        sent = 0
        yield head
        with path.open("rb") as file:
            while chunk := file.read(CHUNK):
                yield chunk
                sent += len(chunk)
                on_progress(sent)
        yield tail

    return body(), f"multipart/form-data; boundary={boundary}", len(head) + size + len(tail)
