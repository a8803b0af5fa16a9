"""Which extraction an artifact gets, by its sniffed MIME type."""

from __future__ import annotations

import pytest

from application.processing import (
    ContentKind,
    FailureReason,
    UnprocessableContent,
    content_kind,
)


@pytest.mark.parametrize(
    ("mime_type", "kind"),
    [
        ("application/pdf", ContentKind.PDF),
        ("text/plain", ContentKind.TEXT),
        ("text/markdown", ContentKind.TEXT),
        ("text/csv", ContentKind.TEXT),
        ("application/json", ContentKind.TEXT),
        ("image/png", ContentKind.IMAGE),
        ("image/jpeg", ContentKind.IMAGE),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ContentKind.DOCX,
        ),
        ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ContentKind.XLSX),
        (
            "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            ContentKind.PPTX,
        ),
        ("application/vnd.oasis.opendocument.text", ContentKind.ODF),
        ("application/vnd.oasis.opendocument.spreadsheet", ContentKind.ODF),
        ("application/vnd.oasis.opendocument.presentation", ContentKind.ODF),
        ("text/html", ContentKind.HTML),
        ("application/xhtml+xml", ContentKind.HTML),
        ("message/rfc822", ContentKind.EMAIL),
    ],
)
def test_each_supported_type_gets_its_extraction(mime_type: str, kind: ContentKind) -> None:
    assert content_kind(mime_type) is kind


def test_parameters_and_case_do_not_change_the_kind() -> None:
    assert content_kind("Text/Plain; charset=ISO-8859-1") is ContentKind.TEXT


@pytest.mark.parametrize("mime_type", ["application/zip", "application/octet-stream", ""])
def test_other_types_are_unsupported(mime_type: str) -> None:
    with pytest.raises(UnprocessableContent) as failed:
        content_kind(mime_type)

    assert failed.value.reason is FailureReason.UNSUPPORTED_TYPE
    assert "not processed" in failed.value.message


def test_a_deployment_can_narrow_the_supported_types() -> None:
    allowed = frozenset({"application/pdf"})

    assert content_kind("application/pdf", allowed) is ContentKind.PDF
    with pytest.raises(UnprocessableContent):
        content_kind("image/png", allowed)


def test_allowing_a_type_no_extraction_handles_does_not_make_it_supported() -> None:
    with pytest.raises(UnprocessableContent):
        content_kind("application/zip", frozenset({"application/zip"}))


@pytest.mark.parametrize(
    ("mime_type", "advice"),
    [
        ("application/msword", "a Word 97-2003 document (.doc) is not processed: save it as .docx"),
        ("application/vnd.ms-excel", "save it as .xlsx"),
        ("application/vnd.ms-powerpoint", "save it as .pptx"),
        ("application/x-ole-storage", "save it as .docx, .xlsx or .pptx"),
        ("application/vnd.ms-word.document.macroEnabled.12", "(.docm) is not processed"),
    ],
)
def test_legacy_and_macro_enabled_office_files_are_refused_with_what_to_save_them_as(
    mime_type: str, advice: str
) -> None:
    with pytest.raises(UnprocessableContent) as failed:
        content_kind(mime_type)

    assert failed.value.reason is FailureReason.UNSUPPORTED_TYPE
    assert advice in failed.value.message


def test_an_encrypted_office_document_is_refused_as_encrypted() -> None:
    with pytest.raises(UnprocessableContent) as failed:
        content_kind("application/encrypted")

    assert failed.value.reason is FailureReason.ENCRYPTED
    assert "save it without one" in failed.value.message
