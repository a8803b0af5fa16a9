"""The check every ZIP-based document passes before a library opens it: real documents go
through, and each hostile archive is refused with its reason, before any expansion."""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.formats.archive import MIB, ArchiveLimits, check_archive
from tests import office_corpus

LIMITS = ArchiveLimits()


@pytest.mark.parametrize(
    "make",
    [
        office_corpus.docx_file,
        office_corpus.xlsx_file,
        office_corpus.pptx_file,
        office_corpus.odt_file,
        office_corpus.ods_file,
        office_corpus.odp_file,
    ],
)
def test_real_documents_pass_and_their_members_are_listed(
    make: Callable[[Path], Path], tmp_path: Path
) -> None:
    path = make(tmp_path)

    members = check_archive(path, LIMITS)

    with zipfile.ZipFile(path) as archive:
        assert members == archive.namelist()


def test_an_archive_declaring_more_than_the_limit_is_refused_as_too_large(
    tmp_path: Path,
) -> None:
    path = office_corpus.zip_bomb_docx_file(tmp_path)

    refused = _refused(path, LIMITS)

    assert refused.reason is FailureReason.TOO_LARGE
    assert "unpacks to 1024 MiB, more than the 256 MiB allowed" in refused.message


def test_a_member_expanding_past_the_ratio_is_refused_as_a_zip_bomb(tmp_path: Path) -> None:
    path = office_corpus.zip_bomb_docx_file(tmp_path)

    refused = _refused(path, ArchiveLimits(max_uncompressed_bytes=2048 * MIB))

    assert refused.reason is FailureReason.TOO_LARGE
    assert "word/media/bomb.bin" in refused.message
    assert "zip bomb" in refused.message


def test_small_members_may_compress_at_any_ratio(tmp_path: Path) -> None:
    # 510 KiB of one repeated element: a ratio of hundreds, as real XML parts reach.
    path = _archive(tmp_path, {"sheet.xml": b"<rows>" + b"<row/>" * 87_000 + b"</rows>"})

    check_archive(path, ArchiveLimits(max_compression_ratio=10))


def test_an_archive_with_too_many_members_is_refused_as_too_large(tmp_path: Path) -> None:
    path = _archive(tmp_path, {f"part{n}.txt": b"x" for n in range(11)})

    refused = _refused(path, ArchiveLimits(max_members=10))

    assert refused.reason is FailureReason.TOO_LARGE
    assert "11 members" in refused.message


def test_a_member_inflating_past_its_declared_size_is_refused_as_corrupt(
    tmp_path: Path,
) -> None:
    path = office_corpus.lying_member_docx(tmp_path)

    refused = _refused(path, LIMITS)

    assert refused.reason is FailureReason.CORRUPT
    assert "inflates to more than the 1000 bytes it declares" in refused.message


def test_a_member_holding_less_than_it_declares_is_refused_as_corrupt(tmp_path: Path) -> None:
    path = _archive(tmp_path, {"short.bin": b"\x01" * 100})
    data = bytearray(path.read_bytes())
    _set_declared_size(data, "short.bin", 5000)
    path.write_bytes(data)

    assert _refused(path, LIMITS).reason is FailureReason.CORRUPT


def test_a_damaged_member_is_refused_as_corrupt(tmp_path: Path) -> None:
    path = _archive(tmp_path, {"part.xml": b"<a>" + b"text " * 1000 + b"</a>"})
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("part.xml")
    start = info.header_offset + 30 + len("part.xml")
    data[start + 5 : start + 25] = b"\xff" * 20
    path.write_bytes(data)

    assert _refused(path, LIMITS).reason is FailureReason.CORRUPT


def test_billion_laughs_in_a_document_part_is_refused_before_any_expansion(
    tmp_path: Path,
) -> None:
    refused = _refused(office_corpus.billion_laughs_docx(tmp_path), LIMITS)

    assert refused.reason is FailureReason.CORRUPT
    assert "'word/document.xml' has a document type declaration" in refused.message


def test_an_external_entity_is_refused(tmp_path: Path) -> None:
    refused = _refused(office_corpus.external_entity_docx(tmp_path), LIMITS)

    assert refused.reason is FailureReason.CORRUPT
    assert "document type declaration" in refused.message


def test_a_dtd_hidden_in_a_member_not_named_xml_is_found(tmp_path: Path) -> None:
    # Libraries parse parts by their declared content type, not their name.
    path = _archive(tmp_path, {"word/part.dat": b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'})

    assert "document type declaration" in _refused(path, LIMITS).message


def test_a_dtd_in_utf16_is_found(tmp_path: Path) -> None:
    xml = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>'
    path = _archive(tmp_path, {"part.xml": xml.encode("utf-16")})

    assert "document type declaration" in _refused(path, LIMITS).message


def test_an_xml_part_in_an_encoding_libxml2_alone_reads_is_refused(tmp_path: Path) -> None:
    # In UTF-7, "+ADw-" is "<": a DTD one parser sees and another does not.
    xml = b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE a+AD4-<a/>'
    path = _archive(tmp_path, {"part.xml": xml})

    refused = _refused(path, LIMITS)

    assert refused.reason is FailureReason.CORRUPT
    assert "UTF-7" in refused.message


def test_a_malformed_xml_part_is_refused_as_corrupt(tmp_path: Path) -> None:
    path = _archive(tmp_path, {"word/document.xml": b"<w:document><w:body></w:document>"})

    refused = _refused(path, LIMITS)

    assert refused.reason is FailureReason.CORRUPT
    assert "not well-formed" in refused.message


def test_a_member_encrypted_in_the_zip_is_refused_as_encrypted(tmp_path: Path) -> None:
    path = _archive(tmp_path, {"secret.xml": b"<a/>"})
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<H", data, central + 8, 1)
    path.write_bytes(data)

    assert _refused(path, LIMITS).reason is FailureReason.ENCRYPTED


def test_a_file_that_is_no_zip_is_refused_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "not.docx"
    path.write_bytes(b"just some text, renamed")

    refused = _refused(path, LIMITS)

    assert refused.reason is FailureReason.CORRUPT
    assert "not a readable ZIP archive" in refused.message


def test_an_encrypted_ooxml_document_is_refused_as_encrypted(tmp_path: Path) -> None:
    refused = _refused(office_corpus.encrypted_docx(tmp_path), LIMITS)

    assert refused.reason is FailureReason.ENCRYPTED
    assert "save it without one" in refused.message


@pytest.mark.parametrize(
    ("make", "advice"),
    [
        (office_corpus.legacy_doc, "save it as .docx"),
        (office_corpus.legacy_xls, "save it as .xlsx"),
        (office_corpus.legacy_ppt, "save it as .pptx"),
        (office_corpus.ole_header_only, "save it as .docx, .xlsx or .pptx"),
    ],
)
def test_a_legacy_office_file_is_refused_as_unsupported_with_advice(
    make: Callable[[Path], Path], advice: str, tmp_path: Path
) -> None:
    refused = _refused(make(tmp_path), LIMITS)

    assert refused.reason is FailureReason.UNSUPPORTED_TYPE
    assert advice in refused.message


def _refused(path: Path, limits: ArchiveLimits) -> UnprocessableContent:
    with pytest.raises(UnprocessableContent) as refused:
        check_archive(path, limits)
    return refused.value


def _archive(directory: Path, members: dict[str, bytes]) -> Path:
    path = directory / "archive.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _set_declared_size(data: bytearray, name: str, size: int) -> None:
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo(name)
    struct.pack_into("<I", data, info.header_offset + 22, size)
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, size)
