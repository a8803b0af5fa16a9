"""The MIME type of office containers, HTML and e-mail, where libmagic's answer is vague:
looked into from the file's head and tail only, as the inspect activity holds them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import magic
import pytest

from infrastructure.processing.sniffing import refine_mime_type
from tests import office_corpus as corpus

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
ODT = "application/vnd.oasis.opendocument.text"
ODS = "application/vnd.oasis.opendocument.spreadsheet"
ODP = "application/vnd.oasis.opendocument.presentation"
HEAD, TAIL = 64 * 1024, 256 * 1024


def refine(path: Path, sniffed: str, *, head: int = HEAD, tail: int = TAIL, **hints: str) -> str:
    data = path.read_bytes()
    return refine_mime_type(sniffed, head=data[:head], tail=data[-tail:], size=len(data), **hints)


MAKERS: list[tuple[Callable[[Path], Path], str]] = [
    (corpus.docx_file, DOCX),
    (corpus.xlsx_file, XLSX),
    (corpus.pptx_file, PPTX),
    (corpus.odt_file, ODT),
    (corpus.ods_file, ODS),
    (corpus.odp_file, ODP),
]


@pytest.mark.parametrize(("make", "expected"), MAKERS)
def test_libmagic_and_the_refinement_agree_on_every_office_format(
    make: Callable[[Path], Path], expected: str, tmp_path: Path
) -> None:
    path = make(tmp_path)
    sniffed = magic.from_buffer(path.read_bytes()[:HEAD], mime=True)

    assert refine(path, sniffed) == expected


@pytest.mark.parametrize("vague", ["application/zip", "application/octet-stream"])
@pytest.mark.parametrize(("make", "expected"), MAKERS)
def test_an_office_file_libmagic_calls_a_zip_is_recognised(
    make: Callable[[Path], Path], expected: str, vague: str, tmp_path: Path
) -> None:
    assert refine(make(tmp_path), vague) == expected


def test_content_types_written_last_are_read_from_the_files_tail(tmp_path: Path) -> None:
    # openpyxl writes [Content_Types].xml last: out of a small head's reach.
    path = corpus.large_xlsx(tmp_path, rows=20_000)
    assert path.stat().st_size > 2 * HEAD

    assert refine(path, "application/zip", head=1024) == XLSX


def test_the_main_parts_name_decides_when_content_types_are_out_of_reach(
    tmp_path: Path,
) -> None:
    path = corpus.large_xlsx(tmp_path, rows=20_000)

    # A tail holding the central directory but not [Content_Types].xml's data.
    assert refine(path, "application/zip", head=1024, tail=2048) == XLSX


def test_a_zip_that_is_no_office_document_stays_a_zip(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", "hello")

    assert refine(path, "application/zip") == "application/zip"


def test_a_macro_enabled_document_is_told_apart_from_a_docx(tmp_path: Path) -> None:
    import zipfile

    path = corpus.docx_file(tmp_path)
    with zipfile.ZipFile(path) as source:
        members = {name: source.read(name) for name in source.namelist()}
    members["[Content_Types].xml"] = members["[Content_Types].xml"].replace(
        b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        b"application/vnd.ms-word.document.macroEnabled.main+xml",
    )
    with zipfile.ZipFile(path, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)

    assert refine(path, "application/zip") == "application/vnd.ms-word.document.macroEnabled.12"


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (corpus.legacy_doc, "application/msword"),
        (corpus.legacy_xls, "application/vnd.ms-excel"),
        (corpus.legacy_ppt, "application/vnd.ms-powerpoint"),
        (corpus.encrypted_docx, "application/encrypted"),
        (corpus.ole_header_only, "application/x-ole-storage"),
    ],
)
@pytest.mark.parametrize("vague", ["application/x-ole-storage", "application/vnd.ms-office"])
def test_an_ole2_file_is_named_by_its_streams(
    make: Callable[[Path], Path], expected: str, vague: str, tmp_path: Path
) -> None:
    assert refine(make(tmp_path), vague) == expected


def test_html_named_so_is_html_though_libmagic_says_text(tmp_path: Path) -> None:
    path = tmp_path / "fragment.html"
    path.write_bytes(b"<p>Just a fragment, no doctype</p>")
    assert magic.from_buffer(path.read_bytes(), mime=True) == "text/plain"

    assert refine(path, "text/plain", filename="fragment.html") == "text/html"
    assert refine(path, "text/plain", declared_type="text/html; charset=utf-8") == "text/html"


def test_an_email_named_so_is_an_email_though_libmagic_says_text(tmp_path: Path) -> None:
    path = tmp_path / "note.eml"
    path.write_bytes(b"Subject: hello\r\nFrom: a@example.com\r\n\r\nBody\r\n")
    assert magic.from_buffer(path.read_bytes(), mime=True) == "text/plain"

    assert refine(path, "text/plain", filename="note.eml") == "message/rfc822"
    assert refine(path, "text/plain", declared_type="message/rfc822") == "message/rfc822"


def test_a_hint_the_content_contradicts_is_not_taken(tmp_path: Path) -> None:
    path = tmp_path / "notes.eml"
    path.write_bytes(b"Just some notes, no header at all.\n")

    assert refine(path, "text/plain", filename="notes.eml") == "text/plain"
    assert refine(path, "text/plain", filename="notes.html") == "text/plain"


def test_a_specific_answer_is_kept(tmp_path: Path) -> None:
    path = corpus.docx_file(tmp_path)

    assert refine(path, "application/pdf", filename="x.html") == "application/pdf"
