"""Office, web and e-mail documents for processing tests, made on the spot with the same
libraries the service reads them with (python-docx, openpyxl, python-pptx, odfpy, the
standard library's ``email``), and hostile ones built byte by byte so that each is wrong
in exactly the one way its name says.

Each function writes one file into ``directory`` and returns its path; the texts the
good files hold are module constants, so tests compare what comes out with what went in.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
import zipfile
import zlib
from email.message import EmailMessage
from email.utils import format_datetime
from functools import cache
from pathlib import Path

DOCX_TITLE = "Quarterly report"
DOCX_HEADING = "Findings"
DOCX_PARAGRAPH = "Sales in Köln grew by 12 % over the quarter."
DOCX_BULLETS = ("Paper supplies", "Ink cartridges")
DOCX_NESTED_BULLET = "Mostly black ink"
DOCX_NUMBERED = ("Order more paper", "Review the contract")
DOCX_TABLE = [["Item", "Cost"], ["Paper", "12.50"], ["Ink", "3.00"]]
DOCX_SUBHEADING = "Next steps"

XLSX_SHEETS: dict[str, list[list[object]]] = {
    "Budget": [["Item", "Cost", "Bought", "Paid"], ["Paper", 12.5, dt.date(2024, 3, 1), True]],
    "Staff": [["Name", "Team"], ["Ada", "Engineering"], ["Grace", "Research"]],
}

PPTX_SLIDES = (
    ("Quarterly review", ["Revenue is up", "Costs are flat"], "Thank the team."),
    ("Plans", ["Hire two engineers"], None),
)

HTML_TITLE = "Café menu"
HTML_BODY = "Fresh crêpes every morning, served with café au lait."

EML_SUBJECT = "Invoice for März"
EML_FROM = "Jörg Müller <joerg@example.com>"
EML_TO = "Ada Lovelace <ada@example.com>"
EML_CC = "Grace Hopper <grace@example.com>"
EML_BODY = "Hello Ada,\n\nplease find the invoice attached.\n\nJörg"
EML_ATTACHMENTS = (
    ("Rechnung März.pdf", "application/pdf", b"%PDF-1.4 not really a PDF\n" * 40),
    ("Übersicht.xlsx", "application/vnd.ms-excel", b"x" * 1000),
)


def docx_file(directory: Path, *, name: str = "report.docx") -> Path:
    from docx import Document

    document = Document()
    document.add_heading(DOCX_TITLE, 0)
    document.add_heading(DOCX_HEADING, 1)
    document.add_paragraph(DOCX_PARAGRAPH)
    for text in DOCX_BULLETS:
        document.add_paragraph(text, style="List Bullet")
    document.add_paragraph(DOCX_NESTED_BULLET, style="List Bullet 2")
    for text in DOCX_NUMBERED:
        document.add_paragraph(text, style="List Number")
    table = document.add_table(rows=len(DOCX_TABLE), cols=len(DOCX_TABLE[0]))
    for r, row in enumerate(DOCX_TABLE):
        for c, text in enumerate(row):
            table.cell(r, c).text = text
    document.add_heading(DOCX_SUBHEADING, 2)
    path = directory / name
    document.save(str(path))
    return path


def xlsx_file(directory: Path, *, name: str = "budget.xlsx") -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    workbook.remove(workbook.active)  # type: ignore[arg-type]
    for title, rows in XLSX_SHEETS.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    path = directory / name
    workbook.save(path)
    return path


def large_xlsx(directory: Path, rows: int, *, name: str = "large.xlsx") -> Path:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Data")
    for number in range(rows):
        sheet.append([number, f"row {number}", number * 0.5])
    path = directory / name
    workbook.save(path)
    return path


def pptx_file(directory: Path, *, name: str = "review.pptx") -> Path:
    from pptx import Presentation

    presentation = Presentation()
    for title, bullets, notes in PPTX_SLIDES:
        slide = presentation.slides.add_slide(presentation.slide_layouts[1])
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for text in bullets[1:]:
            body.add_paragraph().text = text
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    path = directory / name
    presentation.save(str(path))
    return path


def odt_file(directory: Path, *, name: str = "report.odt") -> Path:
    from odf.opendocument import OpenDocumentText
    from odf.style import ListLevelProperties
    from odf.table import Table, TableCell, TableColumn, TableRow
    from odf.text import H, List, ListItem, ListLevelStyleBullet, ListLevelStyleNumber, P
    from odf.text import ListStyle as TextListStyle

    document = OpenDocumentText()
    bullets = TextListStyle(name="Bullets")
    bullets.addElement(ListLevelStyleBullet(level=1, bulletchar="•"))
    bullets.addElement(ListLevelStyleBullet(level=2, bulletchar="◦"))
    numbers = TextListStyle(name="Numbers")
    numbers.addElement(ListLevelStyleNumber(level=1, numformat="1"))
    for style in (bullets, numbers):
        for level in style.childNodes:
            level.addElement(ListLevelProperties())
        document.automaticstyles.addElement(style)
    document.text.addElement(H(outlinelevel=1, text=DOCX_HEADING))
    document.text.addElement(P(text=DOCX_PARAGRAPH))
    bullet_list = List(stylename=bullets)
    for text in DOCX_BULLETS:
        item = ListItem()
        item.addElement(P(text=text))
        bullet_list.addElement(item)
    nested = List()
    nested_item = ListItem()
    nested_item.addElement(P(text=DOCX_NESTED_BULLET))
    nested.addElement(nested_item)
    bullet_list.childNodes[-1].addElement(nested)
    document.text.addElement(bullet_list)
    numbered = List(stylename=numbers)
    for text in DOCX_NUMBERED:
        item = ListItem()
        item.addElement(P(text=text))
        numbered.addElement(item)
    document.text.addElement(numbered)
    table = Table(name="Costs")
    table.addElement(TableColumn(numbercolumnsrepeated=2))
    for row in DOCX_TABLE:
        table_row = TableRow()
        for text in row:
            cell = TableCell()
            cell.addElement(P(text=text))
            table_row.addElement(cell)
        table.addElement(table_row)
    document.text.addElement(table)
    document.text.addElement(H(outlinelevel=2, text=DOCX_SUBHEADING))
    path = directory / name
    document.save(str(path))
    return path


def ods_file(directory: Path, *, name: str = "budget.ods") -> Path:
    """The sheets of ``XLSX_SHEETS`` (text cells), padded as LibreOffice pads a sheet:
    a run of empty cells to the last column and empty rows to the last row."""
    from odf.opendocument import OpenDocumentSpreadsheet
    from odf.table import Table, TableCell, TableRow
    from odf.text import P

    document = OpenDocumentSpreadsheet()
    for title, rows in XLSX_SHEETS.items():
        table = Table(name=title)
        for row in rows:
            table_row = TableRow()
            for value in row:
                cell = TableCell()
                cell.addElement(P(text=_cell_text(value)))
                table_row.addElement(cell)
            table_row.addElement(TableCell(numbercolumnsrepeated=16380))
            table.addElement(table_row)
        padding = TableRow(numberrowsrepeated=1_048_000)
        padding.addElement(TableCell(numbercolumnsrepeated=16384))
        table.addElement(padding)
        document.spreadsheet.addElement(table)
    path = directory / name
    document.save(str(path))
    return path


def odp_file(directory: Path, *, name: str = "review.odp") -> Path:
    from odf.draw import Frame, Page, TextBox
    from odf.namespaces import PRESENTATIONNS
    from odf.opendocument import OpenDocumentPresentation
    from odf.style import MasterPage, PageLayout
    from odf.text import List, ListItem, P

    document = OpenDocumentPresentation()
    layout = PageLayout(name="Layout")
    document.automaticstyles.addElement(layout)
    master = MasterPage(name="Master", pagelayoutname=layout)
    document.masterstyles.addElement(master)
    for title, bullets, _ in PPTX_SLIDES:
        page = Page(masterpagename=master)
        title_frame = Frame(width="20cm", height="3cm", x="2cm", y="1cm")
        title_frame.setAttrNS(PRESENTATIONNS, "class", "title")
        title_box = TextBox()
        title_box.addElement(P(text=title))
        title_frame.addElement(title_box)
        body_frame = Frame(width="20cm", height="10cm", x="2cm", y="5cm")
        body_frame.setAttrNS(PRESENTATIONNS, "class", "outline")
        body_box = TextBox()
        items = List()
        for text in bullets:
            item = ListItem()
            item.addElement(P(text=text))
            items.addElement(item)
        body_box.addElement(items)
        body_frame.addElement(body_box)
        # Written body first: reading order is by position, not by order in the file.
        page.addElement(body_frame)
        page.addElement(title_frame)
        document.presentation.addElement(page)
    path = directory / name
    document.save(str(path))
    return path


def html_file(directory: Path, *, encoding: str = "utf-8", name: str = "menu.html") -> Path:
    """A page with boilerplate around its content, its charset declared in a meta tag."""
    page = f"""<!DOCTYPE html>
<html><head><meta charset="{encoding}"><title>{HTML_TITLE}</title>
<style>p {{ color: red }}</style><script>var tracking = "do not index me";</script></head>
<body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li></ul></nav>
<main>
<h1>{HTML_TITLE}</h1>
<p>{HTML_BODY}</p>
<h2>Drinks</h2>
<ul><li>Espresso<ul><li>Double</li></ul></li><li>Thé vert</li></ul>
<ol><li>Order</li><li>Pay</li></ol>
<table><thead><tr><th>Dish</th><th>Price</th></tr></thead>
<tbody><tr><td>Crêpe</td><td>4 €</td></tr></tbody></table>
</main>
<footer>© The café, all rights reserved</footer>
</body></html>"""
    path = directory / name
    path.write_bytes(page.encode(encoding, "xmlcharrefreplace"))
    return path


def eml_file(directory: Path, *, name: str = "invoice.eml") -> Path:
    """A multipart e-mail: a text body with an HTML alternative, two attachments (their
    names encoded per RFC 2231 and RFC 2047) and a forwarded message."""
    message = EmailMessage()
    message["From"] = EML_FROM
    message["To"] = EML_TO
    message["Cc"] = EML_CC
    message["Subject"] = EML_SUBJECT
    message["Date"] = format_datetime(dt.datetime(2024, 3, 4, 9, 30, tzinfo=dt.UTC))
    message.set_content(EML_BODY)
    message.add_alternative(f"<p>{EML_BODY}</p>", subtype="html")
    (first_name, first_type, first_data), (second_name, second_type, second_data) = EML_ATTACHMENTS
    maintype, subtype = first_type.split("/")
    message.add_attachment(first_data, maintype=maintype, subtype=subtype, filename=first_name)
    maintype, subtype = second_type.split("/")
    message.add_attachment(
        second_data, maintype=maintype, subtype=subtype, filename="second-attachment"
    )
    forwarded = EmailMessage()
    forwarded["Subject"] = "Earlier note"
    forwarded.set_content("See the previous invoice.")
    message.add_attachment(forwarded)
    # Many mailers write a name as an RFC 2047 encoded word, against the standard (which
    # says RFC 2231); the email package would write the latter, so it is put in by hand.
    data = bytes(message).replace(
        b'filename="second-attachment"', f'filename="{_encoded_word(second_name)}"'.encode()
    )
    path = directory / name
    path.write_bytes(data)
    return path


# Hostile documents.


@cache
def zip_bomb_docx() -> bytes:
    """A valid DOCX carrying a member of 1 GiB of zeros (a 1000-fold ratio, honestly declared)."""
    return _with_members(_docx_bytes(), {"word/media/bomb.bin": _zeros_deflated(1024)}, raw=True)


def zip_bomb_docx_file(directory: Path) -> Path:
    return _write(directory / "bomb.docx", zip_bomb_docx())


def lying_member_docx(directory: Path) -> Path:
    """A valid DOCX whose image member declares 1000 bytes and inflates to 8 MiB."""
    data = _with_members(_docx_bytes(), {"word/media/image1.png": b"\x00" * 8 * 1024 * 1024})
    return _write(directory / "lying.docx", _declare_size(data, "word/media/image1.png", 1000))


def billion_laughs_docx(directory: Path) -> Path:
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    )
    return _write(
        directory / "laughs.docx",
        _with_members(_docx_bytes(), {"word/document.xml": _document_xml(entities, "&lol9;")}),
    )


def external_entity_docx(directory: Path) -> Path:
    entity = '<!ENTITY secret SYSTEM "file:///etc/passwd">'
    return _write(
        directory / "external.docx",
        _with_members(_docx_bytes(), {"word/document.xml": _document_xml(entity, "&secret;")}),
    )


def encrypted_docx(directory: Path) -> Path:
    """A DOCX encrypted with a password as Office does it: an OLE container holding
    ``EncryptionInfo`` and ``EncryptedPackage``."""
    from msoffcrypto.format.ooxml import OOXMLFile

    encrypted = io.BytesIO()
    OOXMLFile(io.BytesIO(_docx_bytes())).encrypt("secret", encrypted)
    return _write(directory / "encrypted.docx", encrypted.getvalue())


def legacy_doc(directory: Path, *, name: str = "old.doc") -> Path:
    """A Word 97-2003 file as far as its container goes: an OLE2 compound file whose
    directory holds a ``WordDocument`` stream (empty)."""
    return _write(directory / name, ole_file(["WordDocument", "1Table"]))


def legacy_xls(directory: Path) -> Path:
    return _write(directory / "old.xls", ole_file(["Workbook"]))


def legacy_ppt(directory: Path) -> Path:
    return _write(directory / "old.ppt", ole_file(["PowerPoint Document"]))


def ole_header_only(directory: Path) -> Path:
    """The first 512 bytes of an OLE2 file and nothing else (no sector can be read)."""
    return _write(directory / "header.doc", ole_file(["WordDocument"])[:512])


def ole_file(streams: list[str]) -> bytes:
    """A minimal OLE2 compound file (version 3, 512-byte sectors): the header, one FAT
    sector and one directory sector listing ``streams`` (at most three, all empty)."""
    end_of_chain, free, fat_sector = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD
    header = (
        bytes.fromhex("D0CF11E0A1B11AE1")
        + bytes(16)
        + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6)
        + bytes(6)
        + struct.pack("<IIIIIIIII", 0, 1, 1, 0, 4096, end_of_chain, 0, end_of_chain, 0)
        + struct.pack("<I", 0)
        + struct.pack("<I", free) * 108
    )
    fat = struct.pack("<II", fat_sector, end_of_chain) + struct.pack("<I", free) * 126
    names = ["Root Entry", *streams]
    directory = b""
    for index, name in enumerate(names):
        encoded = (name + "\0").encode("utf-16-le")
        kind = 5 if index == 0 else 2
        child = 1 if index == 0 else free
        right = index + 1 if 0 < index < len(names) - 1 else free
        directory += (
            encoded.ljust(64, b"\0")
            + struct.pack("<HBB", len(encoded), kind, 1)
            + struct.pack("<III", free, right, child)
            + bytes(16 + 4 + 16)
            + struct.pack("<IQ", end_of_chain, 0)
        )
    directory = directory.ljust(512, b"\0")
    # Unused directory entries are empty (type 0) with no siblings.
    return header + fat + directory


# Helpers.


def _docx_bytes() -> bytes:
    from docx import Document

    document = Document()
    document.add_paragraph("A harmless paragraph.")
    stream = io.BytesIO()
    document.save(stream)
    return stream.getvalue()


def _document_xml(declarations: str, body: str) -> bytes:
    namespace = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE w:document [{declarations}]>'
        f'<w:document xmlns:w="{namespace}"><w:body><w:p><w:r><w:t>{body}</w:t></w:r></w:p>'
        "</w:body></w:document>"
    ).encode()


def _with_members(archive: bytes, members: dict[str, bytes], *, raw: bool = False) -> bytes:
    """``archive`` with ``members`` replaced or added. With ``raw``, each new member's
    value is ``(size, crc, deflated bytes)`` packed by ``_zeros_deflated``, written as is."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(archive)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            if info.filename not in members:
                target.writestr(info, source.read(info))
        for name, data in members.items():
            if raw:
                _write_raw(target, name, data)
            else:
                target.writestr(name, data)
    return out.getvalue()


def _zeros_deflated(mib: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    crc = 0
    pieces = []
    for _ in range(mib):
        pieces.append(compressor.compress(block))
        crc = zlib.crc32(block, crc)
    pieces.append(compressor.flush())
    return struct.pack("<QI", mib * 1024 * 1024, crc) + b"".join(pieces)


def _write_raw(target: zipfile.ZipFile, name: str, packed: bytes) -> None:
    """Writes an already deflated member (zipfile would deflate 1 GiB itself, slowly)."""
    size, crc = struct.unpack("<QI", packed[:12])
    data = packed[12:]
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    assert target.fp is not None
    offset = target.fp.tell()
    info.header_offset = offset
    info.file_size, info.compress_size, info.CRC = size, len(data), crc
    target.fp.write(info.FileHeader(zip64=False))
    target.fp.write(data)
    target.filelist.append(info)
    target.NameToInfo[name] = info
    target.start_dir = target.fp.tell()


def _declare_size(archive: bytes, name: str, size: int) -> bytes:
    """``archive`` with the uncompressed size of member ``name`` set to ``size`` in both
    its local header and its central directory entry."""
    data = bytearray(archive)
    with zipfile.ZipFile(io.BytesIO(archive)) as parsed:
        info = parsed.getinfo(name)
    struct.pack_into("<I", data, info.header_offset + 22, size)
    encoded = name.encode()
    entry = data.find(b"PK\x01\x02")
    while entry != -1:
        if data[entry + 46 : entry + 46 + len(encoded)] == encoded:
            struct.pack_into("<I", data, entry + 24, size)
            return bytes(data)
        entry = data.find(b"PK\x01\x02", entry + 4)
    raise AssertionError(f"no central directory entry for {name}")


def _encoded_word(text: str) -> str:
    from email.header import Header

    return Header(text, "utf-8").encode()


def _cell_text(value: object) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
