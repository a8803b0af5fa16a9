"""Checks a ZIP-based document (OOXML, ODF) before any library opens it.

python-docx, openpyxl, python-pptx and odfpy trust the archive they are given: they read
whole members into memory at the size the ZIP says, and parse XML parts with parsers that
a document type declaration can steer (entity expansion, external entities). So the child
walks the archive first, with only the standard library, and refuses in one go what no
real office document does:

- more members, or more declared uncompressed bytes, than the limits allow, or a member
  that compresses better than ``max_compression_ratio`` (a zip bomb): ``too_large``;
- a member whose data inflates to other than its declared size, whose checksum is wrong,
  or whose compression method is not one OOXML or ODF use: ``corrupt``. Every member is
  inflated here, counting the bytes as they come, so a member lying about its size is
  caught after at most one byte more than it declares;
- an XML part with a DTD (``<!DOCTYPE``) or an entity declaration, in an encoding other
  than UTF-8 or UTF-16, or not well-formed: ``corrupt``. OOXML and ODF never need a DTD,
  so a billion-laughs or external-entity part is refused before any expansion happens;
- a member encrypted at the ZIP level: ``encrypted``;
- no ZIP at all but an OLE2 compound file (inspection mistook it, or the upload was
  renamed): ``encrypted`` for a password-protected OOXML document, else
  ``unsupported_type`` with what to save it as.

Runs in the limited child (it reads hostile bytes), before the format's parser.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO
from xml.parsers import expat

from application.processing import FailureReason, UnprocessableContent, refusal
from infrastructure.processing.limits import Json
from infrastructure.processing.sniffing import OLE_MAGIC, ole_type

MIB = 1024 * 1024
# Small members (a few KiB of repetitive XML) reach any ratio; their size is bounded by
# the total anyway. Above this size a member's ratio is checked.
RATIO_FLOOR_BYTES = MIB
# How much is inflated per read: what the check holds in memory at once.
_CHUNK = 256 * 1024
# The fixed part of a ZIP local file header: signature, version, flags, method, time,
# date, crc, compressed size, uncompressed size, name length, extra length.
_LOCAL_HEADER = struct.Struct("<4sHHHHHLLLHH")
_LOCAL_SIGNATURE = b"PK\x03\x04"
_STORED, _DEFLATED = zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED
# The encodings expat reads itself: in these, what this check sees is what libxml2 sees
# (in UTF-7, say, a DTD hides from one parser and not the other).
_XML_ENCODINGS = frozenset(
    {"utf-8", "utf8", "utf-16", "utf-16le", "utf-16be", "iso-8859-1", "latin1", "us-ascii"}
)
# The first bytes of an XML document in every encoding libxml2 detects by itself: a
# member starting so is parsed as XML by some library, whatever its name.
_XML_STARTS = (
    b"<",  # UTF-8 or ASCII, no byte-order mark
    b"\xef\xbb\xbf",  # UTF-8 byte-order mark
    b"\xff\xfe",  # UTF-16 little-endian byte-order mark (and UCS-4 LE)
    b"\xfe\xff",  # UTF-16 big-endian byte-order mark
    b"\x00<",  # UTF-16 BE without a mark (and UCS-4 BE)
    b"\x00\x00\xfe\xff",  # UCS-4 BE byte-order mark
    b"\x4c\x6f\xa7\x94",  # EBCDIC "<?xm"
)


@dataclass(frozen=True)
class ArchiveLimits:
    """What a ZIP-based document may hold (settings ``OFFICE_MAX_*``)."""

    max_members: int = 10_000
    max_uncompressed_bytes: int = 256 * MIB
    max_compression_ratio: int = 100

    def to_json(self) -> dict[str, Json]:
        """The limits as the child's argument."""
        return dict(asdict(self))

    @classmethod
    def from_json(cls, value: dict[str, Json]) -> ArchiveLimits:
        def whole(key: str) -> int:
            limit = value.get(key)
            if not isinstance(limit, int):
                raise TypeError(f"the archive limit {key} is not a whole number: {limit!r}")
            return limit

        return cls(
            max_members=whole("max_members"),
            max_uncompressed_bytes=whole("max_uncompressed_bytes"),
            max_compression_ratio=whole("max_compression_ratio"),
        )


def check_archive(path: str | Path, limits: ArchiveLimits) -> list[str]:
    """Refuses the archive at ``path`` as ``UnprocessableContent`` unless it is safe to hand
    to a library (see the module's docstring); returns the names of its members."""
    with open(path, "rb") as file:
        if file.read(len(OLE_MAGIC)) == OLE_MAGIC:
            raise refusal(ole_type(_file_reader(file)))
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError) as err:
        raise _corrupt(f"not a readable ZIP archive: {err}") from None
    _check_listing(members, limits)
    with open(path, "rb") as file:
        for member in members:
            if not member.is_dir():
                _check_member(file, member)
    return [member.filename for member in members]


def _check_listing(members: list[zipfile.ZipInfo], limits: ArchiveLimits) -> None:
    if len(members) > limits.max_members:
        raise UnprocessableContent(
            FailureReason.TOO_LARGE,
            f"the archive has {len(members)} members, more than the {limits.max_members} allowed",
        )
    total = sum(member.file_size for member in members)
    if total > limits.max_uncompressed_bytes:
        raise UnprocessableContent(
            FailureReason.TOO_LARGE,
            f"the archive unpacks to {total // MIB} MiB, more than the "
            f"{limits.max_uncompressed_bytes // MIB} MiB allowed",
        )
    for member in members:
        if member.flag_bits & 0x1:
            raise UnprocessableContent(
                FailureReason.ENCRYPTED,
                f"the archive's member {member.filename!r} is encrypted",
            )
        if member.compress_type not in (_STORED, _DEFLATED):
            raise _corrupt(
                f"the archive's member {member.filename!r} uses compression method "
                f"{member.compress_type}, which OOXML and ODF documents do not use"
            )
        ratio = member.file_size / max(member.compress_size, 1)
        if member.file_size >= RATIO_FLOOR_BYTES and ratio > limits.max_compression_ratio:
            raise UnprocessableContent(
                FailureReason.TOO_LARGE,
                f"the archive's member {member.filename!r} expands {ratio:.0f} times "
                f"(more than {limits.max_compression_ratio}): a zip bomb",
            )


def _check_member(file: BinaryIO, member: zipfile.ZipInfo) -> None:
    chunks = _inflate(file, member)
    first = next(chunks, b"")
    if first.lstrip(b" \t\r\n").startswith(_XML_STARTS):
        check_xml(member.filename, _prepend(first, chunks))
    else:
        for _ in chunks:
            pass


def _inflate(file: BinaryIO, member: zipfile.ZipInfo) -> Iterator[bytes]:
    """The member's bytes as they inflate, refusing more (or fewer) than it declares."""
    file.seek(member.header_offset)
    header = file.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or not header.startswith(_LOCAL_SIGNATURE):
        raise _corrupt(f"the archive's member {member.filename!r} has no local header")
    name_length, extra_length = _LOCAL_HEADER.unpack(header)[-2:]
    file.seek(name_length + extra_length, 1)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS) if member.compress_type == _DEFLATED else None
    left_in = member.compress_size
    pending = b""
    produced = 0
    crc = 0
    while True:
        if inflater is not None and inflater.unconsumed_tail:
            pending = inflater.unconsumed_tail
        elif left_in > 0:
            pending = file.read(min(_CHUNK, left_in))
            if not pending:
                raise _corrupt(f"the archive's member {member.filename!r} is cut short")
            left_in -= len(pending)
        else:
            break
        # Never more than one byte past the declared size, whatever the data says.
        room = member.file_size - produced + 1
        try:
            out = pending if inflater is None else inflater.decompress(pending, min(_CHUNK, room))
        except zlib.error as err:
            raise _corrupt(f"the archive's member {member.filename!r} is damaged: {err}") from None
        produced += len(out)
        if produced > member.file_size:
            raise _corrupt(
                f"the archive's member {member.filename!r} inflates to more than the "
                f"{member.file_size} bytes it declares"
            )
        crc = zlib.crc32(out, crc)
        if out:
            yield out
    if produced != member.file_size or crc != member.CRC:
        raise _corrupt(
            f"the archive's member {member.filename!r} does not match its declared size "
            "and checksum"
        )


def check_xml(name: str, chunks: Iterator[bytes]) -> None:
    """Refuses, as ``corrupt``, an XML part with a DTD or entity declaration, in another
    encoding than UTF-8 or UTF-16, or not well-formed. Expat reads it as a stream and stops
    at the first declaration, so nothing is ever expanded."""

    def doctype(*_: object) -> None:
        raise _corrupt(f"the XML part {name!r} has a document type declaration (DTD)")

    def entity(*_: object) -> None:
        raise _corrupt(f"the XML part {name!r} declares entities")

    def declaration(_version: str, encoding: str | None, _standalone: int) -> None:
        if encoding is not None and encoding.lower() not in _XML_ENCODINGS:
            raise _corrupt(f"the XML part {name!r} is encoded in {encoding}, not UTF-8 or -16")

    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = doctype
    parser.EntityDeclHandler = entity
    parser.XmlDeclHandler = declaration
    try:
        for chunk in chunks:
            parser.Parse(chunk, False)
        parser.Parse(b"", True)
    except expat.ExpatError as err:
        raise _corrupt(f"the XML part {name!r} is not well-formed: {err}") from None


def _file_reader(file: BinaryIO) -> Callable[[int, int], bytes | None]:
    def read(offset: int, length: int) -> bytes | None:
        file.seek(offset)
        data = file.read(length)
        return data if len(data) == length else None

    return read


def _prepend(first: bytes, rest: Iterator[bytes]) -> Iterator[bytes]:
    yield first
    yield from rest


def _corrupt(message: str) -> UnprocessableContent:
    return UnprocessableContent(FailureReason.CORRUPT, message)
