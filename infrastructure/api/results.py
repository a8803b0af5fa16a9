"""An artifact's stored results as the routes serve them.

Results are blobs the workflow wrote (the text, the Markdown, the chunks, the page facts);
the artifact's ``ArtifactProcessed`` names them. Routes open every blob they need before
the response starts, so that a missing blob is a 404 and never a body cut off midway, then
stream it in bounded pieces: a 1,000-page document's chunks are never held whole.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from typing import BinaryIO

from application.artifacts import ArtifactNotFound
from application.ports import BlobNotFound, BlobStore
from domain.artifact import Artifact, ArtifactStatus

PIECE = 256 * 1024
# Whitespace JSON allows between tokens (RFC 8259 section 2).
_SPACE = " \t\n\r"


class ResultUnavailable(Exception):  # noqa: N818 - a domain word
    """The artifact has no such result: not processed yet, failed, cancelled, or processed
    before the pipeline wrote it. The message says which."""


def unavailable(artifact: Artifact, what: str) -> ResultUnavailable:
    """The error for an artifact without ``what`` (its Markdown, its chunks), saying why.

    Whoever reads a 404 wants to know whether waiting, reprocessing or nothing will help.
    """
    subject = f"artifact {artifact.id}"
    reprocess = f"POST /artifacts/{artifact.id}/reprocess"
    match artifact.status:
        case ArtifactStatus.UPLOADED | ArtifactStatus.PROCESSING:
            why = (
                f"{subject} is {artifact.status.value} (run {artifact.run}); "
                f"its {what} is written when the run succeeds"
            )
        case ArtifactStatus.FAILED:
            why = f"{subject} failed ({artifact.failure_reason}), so it has no {what}"
        case ArtifactStatus.CANCELLED:
            why = f"{subject} was cancelled, so it has no {what}; {reprocess} to process it"
        case ArtifactStatus.PROCESSED:
            why = (
                f"{subject} was processed before the pipeline wrote {what}; "
                f"{reprocess} to have it written"
            )
    return ResultUnavailable(why)


def open_blobs(blob_store: BlobStore, locations: list[str], gone: str) -> list[BinaryIO]:
    """Opens every blob at ``locations``, or none: ``ArtifactNotFound(gone)`` if one is missing."""
    blobs: list[BinaryIO] = []
    try:
        for location in locations:
            blobs.append(blob_store.open(location))
    except BlobNotFound:
        for blob in blobs:
            blob.close()
        raise ArtifactNotFound(gone) from None
    return blobs


def pieces(*blobs: BinaryIO) -> Iterator[bytes]:
    """The blobs' bytes in order, a bounded piece at a time; each is closed once read."""
    try:
        for blob in blobs:
            while piece := blob.read(PIECE):
                yield piece
            blob.close()
    finally:
        # A client gone midway closes this generator: the unread ones are closed too.
        for blob in blobs:
            blob.close()


def json_items(blob: BinaryIO, *, offset: int = 0, limit: int | None = None) -> Iterator[bytes]:
    """A JSON array blob's items ``offset`` to ``offset + limit``, as a JSON array.

    Without a window the bytes are passed through as stored. With one, the array is read
    an item at a time (each item's text is copied as stored, never re-encoded), and reading
    stops once the window is full, so a first page costs a first page's read.
    """
    if offset == 0 and limit is None:
        yield from pieces(blob)
        return
    yield b"["
    end = None if limit is None else offset + limit
    with blob:
        for index, item in enumerate(_array_items(blob)):
            if end is not None and index >= end:
                break
            if index >= offset:
                yield (b"," if index > offset else b"") + item.encode("utf-8")
    yield b"]"


def _array_items(blob: BinaryIO) -> Iterator[str]:
    """The text of each item of the JSON array in ``blob``, in order.

    An item is taken only once the separator after it (``,`` or ``]``) has been read, so a
    number cut by a read boundary is never taken for a shorter one. Raises ``ValueError``
    when the blob is not a JSON array (the workflow wrote it, so that is a bug, a 500).
    """
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8")()
    buffer, position, eof, started = "", 0, False, False
    while True:
        while position < len(buffer) and buffer[position] in _SPACE:
            position += 1
        if position < len(buffer):
            head = buffer[position]
            if not started:
                if head != "[":
                    raise ValueError("the blob is not a JSON array")
                started, position = True, position + 1
                continue
            if head == "]":
                return
            try:
                _, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError:
                end = -1
            following = end
            while 0 <= following < len(buffer) and buffer[following] in _SPACE:
                following += 1
            # Anything but a separator may be the rest of a value cut by a read ("1" of
            # "1.5"): read on, and only at the end is it an error.
            if 0 <= following < len(buffer) and buffer[following] in ",]":
                yield buffer[position:end]
                position = following + (buffer[following] == ",")
                continue
        if eof:
            raise ValueError("the blob is not a whole JSON array")
        # The next item is not whole yet: keep what is unread and read on.
        buffer, position = buffer[position:], 0
        piece = blob.read(PIECE)
        eof = not piece
        buffer += text.decode(piece, final=eof)
