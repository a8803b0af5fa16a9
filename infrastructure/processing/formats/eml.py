"""E-mail (RFC 5322, ``.eml``) as blocks, with the standard library's ``email``.

The header's From, To, Cc, Date and Subject are ``field`` blocks (encoded words decoded);
the body is the text/plain part where there is one, else the HTML part read by the HTML
parser (``formats.html``); every attachment is an ``attachment`` block with its file
name (RFC 2231 and RFC 2047 encodings decoded), content type and decoded size. A
forwarded message is an attachment named after its subject. Attachments are listed,
never parsed: each is a document of its own, to be uploaded as one.

Runs in the limited child.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from email import policy
from email.header import decode_header, make_header
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser

from infrastructure.processing.blocks import Block
from infrastructure.processing.formats import emit
from infrastructure.processing.formats.errors import library_errors_are_corrupt
from infrastructure.processing.formats.html import html_blocks
from infrastructure.processing.limits import Json

FIELDS = ("From", "To", "Cc", "Date", "Subject")
_BLANK_LINES = re.compile(r"\n[ \t]*\n")
# Attachments nested in attachments (a multipart attachment's parts): bounded fan-out.
_MAX_ATTACHMENTS = 10_000


def parse_eml(path: str) -> Iterator[Json]:
    """Runs in the child: yields the e-mail's fields, body and attachments, then facts."""
    attachments = 0
    with library_errors_are_corrupt("e-mail message"), open(path, "rb") as file:
        message = BytesParser(policy=policy.default).parse(file)
        yield from emit.as_json(_fields(message))
        body = message.get_body(preferencelist=("plain", "html"))
        if body is not None:
            yield from emit.as_json(_body(body))
        for block in _attachments(message, has_body=body is not None):
            attachments += 1
            yield from emit.as_json([block])
    yield from emit.as_json([emit.facts(attachments=attachments)])


def _fields(message: EmailMessage) -> Iterator[Block]:
    for name in FIELDS:
        value = message.get(name)
        if value is not None and (text := emit.clean(str(value))):
            yield emit.field(name, text)


def _body(part: MIMEPart) -> Iterator[Block]:
    text = _text(part)
    if part.get_content_subtype() == "html":
        yield from html_blocks(text)
        return
    for chunk in _BLANK_LINES.split(text.replace("\r\n", "\n")):
        if cleaned := emit.clean(chunk):
            yield emit.paragraph(cleaned)


def _text(part: MIMEPart) -> str:
    try:
        return str(part.get_content())
    except (LookupError, ValueError):
        # An unknown or lying charset: the bytes as UTF-8, as far as they are.
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""


def _attachments(message: EmailMessage, *, has_body: bool) -> Iterator[Block]:
    if not message.is_multipart():
        if not has_body:
            yield _attachment(message)
        return
    pending: list[MIMEPart] = []
    pending.extend(message.iter_attachments())
    pending.reverse()
    listed = 0
    while pending and listed < _MAX_ATTACHMENTS:
        part = pending.pop()
        if part.is_multipart() and part.get_content_type() != "message/rfc822":
            pending.extend(list(part.iter_parts())[::-1])
            continue
        listed += 1
        yield _attachment(part)


def _attachment(part: MIMEPart) -> Block:
    content_type = part.get_content_type()
    if content_type == "message/rfc822":
        inner = part.get_payload(0)
        data = inner.as_bytes() if isinstance(inner, EmailMessage) else b""
        subject = (
            emit.clean(str(inner.get("Subject", ""))) if isinstance(inner, EmailMessage) else ""
        )
        name = filename(part) or (f"{subject}.eml" if subject else "")
        return emit.attachment(name, content_type, len(data))
    payload = part.get_payload(decode=True)
    size = len(payload) if isinstance(payload, bytes) else 0
    return emit.attachment(filename(part), content_type, size)


def filename(part: MIMEPart) -> str:
    """The part's file name, decoded: RFC 2231 parameters (the standard) and RFC 2047
    encoded words inside a quoted name (what many mailers write)."""
    name = part.get_filename() or ""
    if "=?" in name:
        with contextlib.suppress(LookupError, ValueError):
            name = str(make_header(decode_header(name)))
    return emit.clean(name)
