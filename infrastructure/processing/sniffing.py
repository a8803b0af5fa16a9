"""The MIME type of an upload where libmagic's answer is not enough: office containers,
HTML and e-mail.

libmagic decides from the first bytes, and its verdict on office files depends on its
version and on how the file was written: a DOCX whose ``[Content_Types].xml`` is not the
first member (openpyxl writes it last) may come out as ``application/zip``, and an OLE2
container (a Word 97 file, a PowerPoint one, an encrypted OOXML) as
``application/x-ole-storage``, ``application/vnd.ms-office`` or ``application/CDFV2``.
So the container is looked into, from the bytes the inspection holds anyway (the file's
head and tail, never more):

- a ZIP: the ODF ``mimetype`` member (first, stored, by the ODF standard), else the main
  part's content type in ``[Content_Types].xml`` (located through the central directory
  at the end of the file), else the name of the main part;
- an OLE2 compound file: the names of its streams (``WordDocument``, ``Workbook``,
  ``PowerPoint Document``, ``EncryptedPackage``), read from its directory sectors.

Text that libmagic calls ``text/plain`` is HTML or an e-mail when the upload says so (its
declared type or its file name) and its first bytes agree: both are read by parsers of
text, so the hint can only choose between safe readings.

Standard library only, and every read is bounded: it runs in the worker on untrusted bytes.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable
from xml.parsers import expat

from application.processing import EMAIL_TYPES, HTML_TYPES

OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
ZIP_MAGIC = b"PK\x03\x04"

# libmagic's answers that say "some container", to be looked into.
_VAGUE_ZIP = frozenset(
    {"application/zip", "application/octet-stream", "application/x-zip-compressed"}
)
_VAGUE_OLE = frozenset(
    {
        "application/x-ole-storage",
        "application/vnd.ms-office",
        "application/octet-stream",
        "application/cdfv2",
        "application/cdfv2-unknown",
        "application/cdfv2-corrupt",
    }
)
OOXML_MAIN_TYPES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    ),
    "application/vnd.ms-word.document.macroEnabled.main+xml": (
        "application/vnd.ms-word.document.macroEnabled.12"
    ),
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml": (
        "application/vnd.ms-excel.sheet.macroEnabled.12"
    ),
    "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml": (
        "application/vnd.ms-powerpoint.presentation.macroEnabled.12"
    ),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml": (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.template"
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml": (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.template"
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml": (
        "application/vnd.openxmlformats-officedocument.presentationml.template"
    ),
}
# The main part's usual name, when [Content_Types].xml is out of reach.
_OOXML_MAIN_PARTS = {
    "word/document.xml": OOXML_MAIN_TYPES[
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    ],
    "xl/workbook.xml": OOXML_MAIN_TYPES[
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"
    ],
    "ppt/presentation.xml": OOXML_MAIN_TYPES[
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
    ],
}
# Which stream of an OLE2 file says what it is.
_OLE_STREAMS = (
    ("EncryptedPackage", "application/encrypted"),
    ("WordDocument", "application/msword"),
    ("Workbook", "application/vnd.ms-excel"),
    ("Book", "application/vnd.ms-excel"),
    ("PowerPoint Document", "application/vnd.ms-powerpoint"),
)
_HTML_SUFFIXES = (".html", ".htm", ".xhtml")
_EMAIL_SUFFIXES = (".eml",)
# An RFC 5322 header field at the start of a message: a name, a colon.
_HEADER_LINE = re.compile(rb"\A(?:\xef\xbb\xbf)?[!-9;-~]+:[ \t]")
_MAX_CONTENT_TYPES_BYTES = 1024 * 1024
_MAX_CENTRAL_DIRECTORY_BYTES = 4 * 1024 * 1024
_MAX_DIRECTORY_SECTORS = 64

# Reads ``length`` bytes at ``offset``; None when they are not at hand.
Reader = Callable[[int, int], bytes | None]


def refine_mime_type(
    sniffed: str,
    *,
    head: bytes,
    tail: bytes,
    size: int,
    declared_type: str = "",
    filename: str = "",
) -> str:
    """The upload's MIME type: libmagic's ``sniffed`` answer, made precise where it is
    vague about a container, or where text is HTML or e-mail by the upload's own word.

    ``head`` and ``tail`` are the file's first and last bytes, ``size`` its length.
    """
    essence = sniffed.split(";", 1)[0].strip().lower()
    read = windows(head, tail, size)
    if head.startswith(OLE_MAGIC) and essence in _VAGUE_OLE:
        return ole_type(read)
    if head.startswith(ZIP_MAGIC) and essence in _VAGUE_ZIP:
        return zip_type(read, size) or sniffed
    if essence in ("text/plain", "text/xml", "application/xml"):
        declared = declared_type.split(";", 1)[0].strip().lower()
        name = filename.lower()
        if (declared in HTML_TYPES or name.endswith(_HTML_SUFFIXES)) and b"<" in head:
            return "text/html"
        if (declared in EMAIL_TYPES or name.endswith(_EMAIL_SUFFIXES)) and _HEADER_LINE.match(head):
            return "message/rfc822"
    return sniffed


def windows(head: bytes, tail: bytes, size: int) -> Reader:
    """A reader of the bytes in ``head`` (at 0) and ``tail`` (ending at ``size``)."""
    tail_start = size - len(tail)

    def read(offset: int, length: int) -> bytes | None:
        if offset < 0 or length < 0:
            return None
        if offset + length <= len(head):
            return head[offset : offset + length]
        if offset >= tail_start and offset + length <= size:
            return tail[offset - tail_start : offset - tail_start + length]
        return None

    return read


def ole_type(read: Reader) -> str:
    """The MIME type of an OLE2 compound file, from the names of its streams:
    ``application/encrypted`` for an encrypted OOXML document, a legacy Office type, or
    ``application/x-ole-storage`` when none is found."""
    names = ole_stream_names(read)
    for stream, mime_type in _OLE_STREAMS:
        if stream in names:
            return mime_type
    return "application/x-ole-storage"


def ole_stream_names(read: Reader) -> set[str]:
    """The names in an OLE2 file's directory, as far as its sectors can be read."""
    header = read(0, 512)
    if header is None or not header.startswith(OLE_MAGIC):
        return set()
    shift = struct.unpack_from("<H", header, 30)[0]
    if shift not in (9, 12):
        return set()
    sector_size = 1 << shift
    first_directory = struct.unpack_from("<I", header, 48)[0]
    # The first 109 FAT sectors are listed in the header (DIFAT); enough for 7 MiB files
    # with 512-byte sectors, and the directory of larger ones is found when it is early.
    fat_sectors = struct.unpack_from("<109I", header, 76)
    per_fat_sector = sector_size // 4
    names: set[str] = set()
    sector, seen = first_directory, set[int]()
    while sector < 0xFFFFFFFA and sector not in seen and len(seen) < _MAX_DIRECTORY_SECTORS:
        seen.add(sector)
        data = read((sector + 1) * sector_size, sector_size)
        if data is None:
            break
        for start in range(0, sector_size, 128):
            length, kind = struct.unpack_from("<HB", data, start + 64)
            if kind in (1, 2, 5) and 2 <= length <= 64 and length % 2 == 0:
                names.add(data[start : start + length - 2].decode("utf-16-le", "replace"))
        fat_index = sector // per_fat_sector
        if fat_index >= len(fat_sectors):
            break
        fat = read((fat_sectors[fat_index] + 1) * sector_size, sector_size)
        if fat is None:
            break
        sector = struct.unpack_from("<I", fat, (sector % per_fat_sector) * 4)[0]
    return names


def zip_type(read: Reader, size: int) -> str | None:
    """The MIME type of an ODF or OOXML document in a ZIP, or None when it is neither (or
    its telling parts are out of reach)."""
    odf = _odf_mimetype(read)
    if odf is not None:
        return odf
    entries = _central_directory(read, size)
    content_types = entries.get("[Content_Types].xml")
    if content_types is not None:
        xml = _member(read, *content_types)
        found = _main_content_type(xml) if xml is not None else None
        if found is not None:
            return found
    for part, mime_type in _OOXML_MAIN_PARTS.items():
        if part in entries:
            return mime_type
    return None


def _odf_mimetype(read: Reader) -> str | None:
    header = read(0, 30)
    if header is None:
        return None
    method, compressed = (
        struct.unpack_from("<H", header, 8)[0],
        struct.unpack_from("<I", header, 18)[0],
    )
    name_length, extra_length = struct.unpack_from("<HH", header, 26)
    name = read(30, name_length)
    if name != b"mimetype" or method != 0 or compressed > 128:
        return None
    value = read(30 + name_length + extra_length, compressed)
    if value is None:
        return None
    text = value.decode("ascii", "replace").strip()
    return text if text.startswith("application/vnd.oasis.opendocument.") else None


def _central_directory(read: Reader, size: int) -> dict[str, tuple[int, int, int, int]]:
    """Member name -> (local header offset, method, compressed size, size), for the
    members the central directory lists (when it is within reach)."""
    # The end record is the last 22 bytes but for a comment of up to 64 KiB: the widest
    # window at hand is searched.
    for window in (65_536 + 22, 8192, 1024, 22):
        end = read(size - min(size, window), min(size, window))
        if end is not None:
            break
    else:
        return {}
    at = end.rfind(b"PK\x05\x06")
    if at < 0 or at + 22 > len(end):
        return {}
    count, directory_size, directory_offset = struct.unpack_from("<HII", end, at + 10)
    if directory_size > _MAX_CENTRAL_DIRECTORY_BYTES:
        return {}
    directory = read(directory_offset, directory_size)
    if directory is None:
        return {}
    entries: dict[str, tuple[int, int, int, int]] = {}
    position = 0
    for _ in range(count):
        if directory[position : position + 4] != b"PK\x01\x02" or position + 46 > len(directory):
            break
        method = struct.unpack_from("<H", directory, position + 10)[0]
        compressed, uncompressed, name_length, extra_length, comment_length = struct.unpack_from(
            "<IIHHH", directory, position + 20
        )
        offset = struct.unpack_from("<I", directory, position + 42)[0]
        name = directory[position + 46 : position + 46 + name_length].decode("utf-8", "replace")
        entries[name] = (offset, method, compressed, uncompressed)
        position += 46 + name_length + extra_length + comment_length
    return entries


def _member(read: Reader, offset: int, method: int, compressed: int, size: int) -> bytes | None:
    if compressed > _MAX_CONTENT_TYPES_BYTES or size > _MAX_CONTENT_TYPES_BYTES:
        return None
    header = read(offset, 30)
    if header is None or not header.startswith(ZIP_MAGIC):
        return None
    name_length, extra_length = struct.unpack_from("<HH", header, 26)
    data = read(offset + 30 + name_length + extra_length, compressed)
    if data is None or method not in (0, 8):
        return None
    if method == 0:
        return data
    try:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        return inflater.decompress(data, _MAX_CONTENT_TYPES_BYTES)
    except zlib.error:
        return None


def _main_content_type(xml: bytes) -> str | None:
    """The document's MIME type from ``[Content_Types].xml``: the first override naming a
    main part type known here. A DTD or malformed XML gives None (the parser refuses it)."""
    found: list[str] = []

    def element(name: str, attributes: dict[str, str]) -> None:
        if name.rpartition(" ")[2] == "Override":
            content_type = attributes.get("ContentType", "")
            if content_type in OOXML_MAIN_TYPES:
                found.append(OOXML_MAIN_TYPES[content_type])

    def refuse(*_: object) -> None:
        raise ValueError("a DTD")

    parser = expat.ParserCreate(namespace_separator=" ")
    parser.StartElementHandler = element
    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    try:
        parser.Parse(xml, True)
    except (expat.ExpatError, ValueError):
        return None
    return found[0] if found else None
