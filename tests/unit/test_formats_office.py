"""The office parsers (DOCX, XLSX, PPTX, ODT, ODS, ODP), called in-process on documents
made with the same libraries: the blocks they yield, in order, and their facts.

Each parser is the child-side function the limited child runs; what it yields must be
blocks ``check_block`` accepts, then one facts item.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from docx import Document

from application.processing import FailureReason, UnprocessableContent
from infrastructure.processing.formats.archive import ArchiveLimits
from infrastructure.processing.formats.docx import parse_docx
from infrastructure.processing.formats.odf import parse_odf
from infrastructure.processing.formats.pptx import parse_pptx
from infrastructure.processing.formats.xlsx import cell_text, parse_xlsx
from tests import office_corpus as corpus
from tests.blocks import heading, item, page, paragraph, read, table

ARCHIVE = ArchiveLimits().to_json()
CELLS = 500_000


REPORT_BLOCKS = [
    heading(1, corpus.DOCX_HEADING),
    paragraph(corpus.DOCX_PARAGRAPH),
    *(item(text) for text in corpus.DOCX_BULLETS),
    item(corpus.DOCX_NESTED_BULLET, depth=1),
    *(item(text, ordered=True) for text in corpus.DOCX_NUMBERED),
    table(corpus.DOCX_TABLE),
    heading(2, corpus.DOCX_SUBHEADING),
]


# DOCX


def test_a_docx_gives_its_headings_paragraphs_lists_and_tables_in_order(tmp_path: Path) -> None:
    blocks, facts = read(parse_docx(str(corpus.docx_file(tmp_path)), ARCHIVE))

    assert blocks == [heading(1, corpus.DOCX_TITLE), *REPORT_BLOCKS]
    assert facts == {"tables": 1}


def test_docx_list_depth_is_the_numbering_level_and_its_format_says_ordered(
    tmp_path: Path,
) -> None:
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    document = Document()
    numbering = document.part.numbering_part.element
    # A two-level list as Word writes one: numbers, then bullets for the indented items.
    numbering.append(
        parse_xml(
            f'<w:abstractNum {nsdecls("w")} w:abstractNumId="90">'
            '<w:lvl w:ilvl="0"><w:numFmt w:val="decimal"/></w:lvl>'
            '<w:lvl w:ilvl="1"><w:numFmt w:val="bullet"/></w:lvl></w:abstractNum>'
        )
    )
    numbering.append(
        parse_xml(f'<w:num {nsdecls("w")} w:numId="90"><w:abstractNumId w:val="90"/></w:num>')
    )
    for text, level in [("Top", 0), ("Nested", 1), ("Back", 0)]:
        paragraph_element = document.add_paragraph(text)._p
        paragraph_element.get_or_add_pPr().append(
            parse_xml(
                f'<w:numPr {nsdecls("w")}><w:ilvl w:val="{level}"/><w:numId w:val="90"/></w:numPr>'
            )
        )
    path = tmp_path / "nested.docx"
    document.save(str(path))

    blocks, _ = read(parse_docx(str(path), ARCHIVE))

    assert blocks == [
        item("Top", ordered=True),
        item("Nested", ordered=False, depth=1),
        item("Back", ordered=True),
    ]


def test_docx_merged_cells_keep_the_columns_aligned(tmp_path: Path) -> None:
    document = Document()
    grid = document.add_table(rows=2, cols=3)
    for column, text in enumerate(["a", "b", "c"]):
        grid.cell(0, column).text = text
    grid.cell(1, 0).merge(grid.cell(1, 1)).text = "wide"
    grid.cell(1, 2).text = "z"
    path = tmp_path / "merged.docx"
    document.save(str(path))

    blocks, _ = read(parse_docx(str(path), ARCHIVE))

    assert blocks == [table([["a", "b", "c"], ["wide", "", "z"]])]


def test_docx_content_in_content_controls_and_tracked_insertions_is_read(
    tmp_path: Path,
) -> None:
    body = (
        "<w:sdt><w:sdtContent><w:p><w:r><w:t>Inside a control</w:t></w:r></w:p>"
        "</w:sdtContent></w:sdt>"
        '<w:p><w:r><w:t xml:space="preserve">Kept </w:t></w:r>'
        '<w:ins w:id="1" w:author="a"><w:r><w:t>inserted</w:t></w:r></w:ins>'
        '<w:del w:id="2" w:author="a"><w:r><w:delText>deleted</w:delText></w:r></w:del></w:p>'
    )
    path = _docx_with_body(tmp_path, body)

    blocks, _ = read(parse_docx(str(path), ARCHIVE))

    assert blocks == [paragraph("Inside a control"), paragraph("Kept inserted")]


def test_docx_text_boxes_follow_their_paragraph_once(tmp_path: Path) -> None:
    box = "<w:txbxContent><w:p><w:r><w:t>In the box</w:t></w:r></w:p></w:txbxContent>"
    body = (
        '<w:p><w:r><w:t>Anchor</w:t></w:r><w:r><mc:AlternateContent><mc:Choice Requires="wps">'
        f"<w:drawing><wps:txbx>{box}</wps:txbx></w:drawing></mc:Choice>"
        f"<mc:Fallback><w:pict><v:textbox>{box}</v:textbox></w:pict></mc:Fallback>"
        "</mc:AlternateContent></w:r></w:p>"
    )
    path = _docx_with_body(tmp_path, body)

    blocks, _ = read(parse_docx(str(path), ARCHIVE))

    assert blocks == [paragraph("Anchor"), paragraph("In the box")]


def test_a_docx_that_is_not_a_word_document_is_refused_as_corrupt(tmp_path: Path) -> None:
    with pytest.raises(UnprocessableContent) as refused:
        list(parse_docx(str(corpus.xlsx_file(tmp_path)), ARCHIVE))

    assert refused.value.reason is FailureReason.CORRUPT
    assert "not a readable Word document" in refused.value.message


# XLSX


def test_an_xlsx_gives_a_heading_and_a_table_per_sheet(tmp_path: Path) -> None:
    blocks, facts = read(parse_xlsx(str(corpus.xlsx_file(tmp_path)), ARCHIVE, CELLS))

    assert blocks == [
        heading(2, "Budget"),
        table([["Item", "Cost", "Bought", "Paid"], ["Paper", "12.5", "2024-03-01", "TRUE"]]),
        heading(2, "Staff"),
        table([["Name", "Team"], ["Ada", "Engineering"], ["Grace", "Research"]]),
    ]
    assert facts == {"sheets": 2, "rows": 5, "truncated": False}


def test_xlsx_cells_past_the_budget_are_cut_and_the_cut_is_a_fact(tmp_path: Path) -> None:
    path = corpus.large_xlsx(tmp_path, rows=1000)

    blocks, facts = read(parse_xlsx(str(path), ARCHIVE, 3 * 100))

    assert blocks[0] == heading(2, "Data")
    assert blocks[1]["rows"][0] == ["0", "row 0", "0"]
    assert len(blocks[1]["rows"]) == 100
    assert facts == {"sheets": 1, "rows": 100, "truncated": True}


def test_xlsx_values_read_as_excel_shows_them() -> None:
    import datetime as dt

    assert cell_text(None) == ""
    assert cell_text(3.0) == "3"
    assert cell_text(0.25) == "0.25"
    assert cell_text(True) == "TRUE"
    assert cell_text(dt.datetime(2024, 3, 1)) == "2024-03-01"
    assert cell_text(dt.datetime(2024, 3, 1, 9, 5)) == "2024-03-01 09:05:00"
    assert cell_text("two\tcells  apart") == "two cells apart"


def test_an_xlsx_formula_gives_its_last_calculated_value_not_its_text(tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Total", "=SUM(1,2)"])
    path = tmp_path / "formula.xlsx"
    workbook.save(path)

    blocks, _ = read(parse_xlsx(str(path), ARCHIVE, CELLS))

    # openpyxl never calculates: a file it wrote has no cached value, so the cell is empty.
    assert blocks[1] == table([["Total"]])


# PPTX


def test_a_pptx_gives_a_page_per_slide_with_its_title_bullets_and_notes(tmp_path: Path) -> None:
    blocks, facts = read(parse_pptx(str(corpus.pptx_file(tmp_path)), ARCHIVE))

    assert blocks == [
        page(1),
        heading(2, "Quarterly review"),
        item("Revenue is up"),
        item("Costs are flat"),
        heading(3, "Notes"),
        paragraph("Thank the team."),
        page(2),
        heading(2, "Plans"),
        item("Hire two engineers"),
    ]
    assert facts == {"slides": 2}


def test_pptx_shapes_are_read_top_to_bottom_with_groups_and_tables(tmp_path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    presentation = Presentation()
    slide = presentation.slides.add_slide(presentation.slide_layouts[6])  # blank
    low = slide.shapes.add_textbox(Inches(1), Inches(5), Inches(4), Inches(1))
    low.text_frame.text = "Written first, shown last"
    group = slide.shapes.add_group_shape()
    grouped = group.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1))
    grouped.text_frame.text = "In a group, at the top"
    grid = slide.shapes.add_table(2, 2, Inches(1), Inches(3), Inches(4), Inches(1)).table
    for (r, c), text in zip([(0, 0), (0, 1), (1, 0), (1, 1)], ["k", "v", "a", "1"], strict=True):
        grid.cell(r, c).text = text
    path = tmp_path / "shapes.pptx"
    presentation.save(str(path))

    blocks, _ = read(parse_pptx(str(path), ARCHIVE))

    assert blocks == [
        page(1),
        paragraph("In a group, at the top"),
        table([["k", "v"], ["a", "1"]]),
        paragraph("Written first, shown last"),
    ]


# ODF


def test_an_odt_maps_as_a_docx_does(tmp_path: Path) -> None:
    blocks, facts = read(parse_odf(str(corpus.odt_file(tmp_path)), ARCHIVE, CELLS))

    assert blocks == REPORT_BLOCKS
    assert facts == {"tables": 1}


def test_an_ods_maps_as_an_xlsx_does_without_expanding_its_padding(tmp_path: Path) -> None:
    # The file pads each row to 16384 columns and each sheet to a million rows.
    blocks, facts = read(parse_odf(str(corpus.ods_file(tmp_path)), ARCHIVE, CELLS))

    assert blocks == [
        heading(2, "Budget"),
        table([["Item", "Cost", "Bought", "Paid"], ["Paper", "12.5", "2024-03-01", "TRUE"]]),
        heading(2, "Staff"),
        table([["Name", "Team"], ["Ada", "Engineering"], ["Grace", "Research"]]),
    ]
    assert facts == {"sheets": 2, "rows": 5, "truncated": False}


def test_an_ods_written_with_whitespace_between_elements_reads_the_same(tmp_path: Path) -> None:
    # KOffice and others indent their XML; odfpy then keeps the loaded body apart from
    # the document's own .spreadsheet element.
    path = corpus.ods_file(tmp_path)
    with zipfile.ZipFile(path) as archive:
        content = archive.read("content.xml")
    _replace_member(path, "content.xml", content.replace(b"><", b">\n  <"))

    blocks, facts = read(parse_odf(str(path), ARCHIVE, CELLS))

    assert [block["type"] for block in blocks] == ["heading", "table", "heading", "table"]
    assert facts["sheets"] == 2


def test_ods_repeated_cells_between_content_are_expanded_within_the_budget(
    tmp_path: Path,
) -> None:
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    sheet = Table(name="Repeats")
    row = TableRow(numberrowsrepeated=1_000_000_000)
    row.addElement(TableCell(numbercolumnsrepeated=2))
    value = TableCell(numbercolumnsrepeated=3)
    value.addElement(P(text="x"))
    row.addElement(value)
    sheet.addElement(row)
    document.spreadsheet.addElement(sheet)
    path = tmp_path / "repeats.ods"
    document.save(str(path))

    blocks, facts = read(parse_odf(str(path), ARCHIVE, 50))

    assert blocks[1] == table([["", "", "x", "x", "x"]] * 10)
    assert facts["truncated"] is True


def test_an_odp_gives_a_page_per_slide_in_reading_order(tmp_path: Path) -> None:
    blocks, facts = read(parse_odf(str(corpus.odp_file(tmp_path)), ARCHIVE, CELLS))

    assert blocks == [
        page(1),
        heading(2, "Quarterly review"),
        item("Revenue is up"),
        item("Costs are flat"),
        page(2),
        heading(2, "Plans"),
        item("Hire two engineers"),
    ]
    assert facts == {"slides": 2}


def test_a_password_protected_odf_is_refused_as_encrypted(tmp_path: Path) -> None:
    path = corpus.odt_file(tmp_path)
    _replace_member(
        path,
        "META-INF/manifest.xml",
        b'<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
        b'<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml">'
        b'<manifest:encryption-data manifest:checksum-type="SHA1" manifest:checksum="x"/>'
        b"</manifest:file-entry></manifest:manifest>",
    )

    with pytest.raises(UnprocessableContent) as refused:
        list(parse_odf(str(path), ARCHIVE, CELLS))

    assert refused.value.reason is FailureReason.ENCRYPTED


def _docx_with_body(directory: Path, body: str) -> Path:
    """A DOCX whose body is ``body`` (WordprocessingML, with the usual prefixes)."""
    path = corpus.docx_file(directory, name="custom.docx")
    namespaces = {
        "w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
        "mc": "http://schemas.openxmlformats.org/markup-compatibility/2006",
        "wps": "http://schemas.microsoft.com/office/word/2010/wordprocessingShape",
        "v": "urn:schemas-microsoft-com:vml",
    }
    declarations = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in namespaces.items())
    xml = (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        f'<w:document {declarations} mc:Ignorable="wps"><w:body>{body}</w:body></w:document>'
    )
    _replace_member(path, "word/document.xml", xml.encode())
    return path


def _replace_member(path: Path, name: str, data: bytes) -> None:
    with zipfile.ZipFile(path) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    members[name] = data
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for member, content in members.items():
            target.writestr(member, content)
