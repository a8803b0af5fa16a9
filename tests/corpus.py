"""Files for processing tests, made on the spot: no binary blobs live in the repository.

Each function writes one file into ``directory`` and returns its path. The hostile PDFs
are written byte by byte, with a correct cross-reference table, so that each is broken
in exactly the one way its name says.
"""

from __future__ import annotations

import random
import re
import struct
import zipfile
import zlib
from functools import cache
from pathlib import Path
from tempfile import TemporaryDirectory

from PIL import Image
from reportlab.lib.pdfencrypt import StandardEncryption  # type: ignore[import-untyped]
from reportlab.pdfgen.canvas import Canvas  # type: ignore[import-untyped]


def page_text(number: int) -> str:
    """The text ``text_pdf`` puts on page ``number`` (from 1), as extraction returns it."""
    return f"Page {number} of the corpus.\nIt mentions a café in Köln."


def text_pdf(
    directory: Path, pages: int, *, name: str = "text.pdf", password: str | None = None
) -> Path:
    path = directory / name
    encrypt = StandardEncryption(password) if password is not None else None
    canvas = Canvas(str(path), encrypt=encrypt)
    for number in range(1, pages + 1):
        for line_number, line in enumerate(page_text(number).splitlines()):
            canvas.drawString(72, 720 - 20 * line_number, line)
        canvas.showPage()
    canvas.save()
    return path


@cache
def long_pdf(pages: int) -> bytes:
    """``pages`` pages of 60 long lines: seconds of PDFium's time, so a run can be caught
    mid-extraction (killed, cancelled, terminated)."""
    line = "The quick brown fox jumps over the lazy dog on page {0}, line {1}. " * 2
    with TemporaryDirectory() as directory:
        path = Path(directory) / "long.pdf"
        canvas = Canvas(str(path))
        for page in range(pages):
            for number in range(60):
                canvas.drawString(36, 800 - 13 * number, line.format(page, number))
            canvas.showPage()
        canvas.save()
        return path.read_bytes()


def dense_text_pdf(directory: Path, pages: int, *, name: str = "dense.pdf") -> Path:
    """Pages full of text (50 lines of 12 words each), the same words every time."""
    rng = random.Random(6)
    canvas = Canvas(str(directory / name))
    for _ in range(pages):
        text = canvas.beginText(72, 740)
        text.setFont("Helvetica", 10)
        for _ in range(50):
            text.textLine(" ".join(rng.choice(_WORDS) for _ in range(12)))
        canvas.drawText(text)
        canvas.showPage()
    canvas.save()
    return directory / name


_WORDS = (
    *("artifact", "processing", "durable", "workflow", "event", "store", "upload", "extract"),
    *("summary", "page", "text", "temporal", "worker", "activity", "heartbeat", "retry"),
    *("parser", "child", "process", "memory", "blob", "café", "Köln"),
)


def encrypted_pdf(directory: Path) -> Path:
    """Needs a user password to open (an owner password alone still lets anyone read)."""
    return text_pdf(directory, 2, name="encrypted.pdf", password="secret")


def truncated_pdf(directory: Path) -> Path:
    whole = text_pdf(directory, 3, name="whole.pdf").read_bytes()
    path = directory / "truncated.pdf"
    path.write_bytes(whole[: len(whole) // 2])
    return path


def cyclic_page_tree_pdf(directory: Path) -> Path:
    """A page tree whose only kid is a node whose only kid is the root again."""
    return _write(
        directory / "cyclic.pdf",
        _assemble(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R] /Count 1 >>",
            ]
        ),
    )


def huge_xref_pdf(directory: Path) -> Path:
    """A cross-reference stream claiming 2**31 - 1 objects (/Size and /Index)."""
    head = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(
        [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"], 1
    ):
        offsets.append(len(head))
        head += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    entries = b"\x00\x00\x00\x00\x00\xff" + b"".join(
        b"\x01" + struct.pack(">I", offset) + b"\x00" for offset in offsets
    )
    data = zlib.compress(entries)
    size = 2**31 - 1
    xref_at = len(head)
    head += (
        b"3 0 obj\n<< /Type /XRef /Size %d /Index [0 %d] /W [1 4 1] /Root 1 0 R "
        b"/Filter /FlateDecode /Length %d >>\nstream\n" % (size, size, len(data))
    )
    head += data + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return _write(directory / "huge-xref.pdf", bytes(head))


def looping_xref_pdf(directory: Path) -> Path:
    """A cross-reference table whose /Prev is itself and whose every entry points back at it:
    a parser that follows the chain never ends, and there is no object to find."""
    head = b"%PDF-1.7\n"
    xref_at = len(head)
    table = b"xref\n0 3\n0000000000 65535 f \n" + b"%010d 00000 n \n" % xref_at * 2
    trailer = b"trailer\n<< /Size 3 /Root 1 0 R /Prev %d >>\n" % xref_at
    return _write(
        directory / "looping-xref.pdf",
        head + table + trailer + b"startxref\n%d\n%%%%EOF\n" % xref_at,
    )


def decompression_bomb_pdf(directory: Path, gib: int = 2) -> Path:
    """One page whose 7 KB content stream, deflated twice, inflates to ``gib`` GiB of zeros.

    After a full flush deflate starts afresh, so every 16 MiB block of zeros compresses to
    the same bytes: the first layer is that block repeated, made in a moment.
    """
    block_size = 16 * 1024 * 1024
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(bytes(block_size)) + deflate.flush(zlib.Z_FULL_FLUSH)
    blocks = gib * 1024 // 16
    # Adler-32 of n zeros: A = 1, B = n (mod 65521).
    adler = ((blocks * block_size) % 65521) << 16 | 1
    once = b"\x78\xda" + block * blocks + deflate.flush() + struct.pack(">I", adler)
    twice = zlib.compress(once, 9)
    content = b"<< /Length %d /Filter [/FlateDecode /FlateDecode] >>\nstream\n" % len(twice)
    return _write(
        directory / "bomb.pdf",
        _assemble(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
                content + twice + b"\nendstream",
            ]
        ),
    )


def deeply_nested_pdf(directory: Path, depth: int = 2_000_000) -> Path:
    """A page holding ``depth`` nested arrays: small on disk, costly in memory to parse."""
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Nested "
        + b"[" * depth
        + b"]" * depth
        + b" >>"
    )
    return _write(
        directory / "nested.pdf",
        _assemble(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                page,
            ]
        ),
    )


def pageless_pdf(directory: Path) -> Path:
    """A well-formed PDF with an empty page tree."""
    return _write(
        directory / "pageless.pdf",
        _assemble([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"]),
    )


def zip_disguised_as_pdf(directory: Path) -> Path:
    path = directory / "archive.pdf"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "not a PDF")
    return path


def text_file(directory: Path, text: str, *, encoding: str, name: str = "text.txt") -> Path:
    return _write(directory / name, text.encode(encoding))


def png_image(directory: Path, width: int = 64, height: int = 32) -> Path:
    path = directory / "image.png"
    Image.new("RGB", (width, height), (200, 30, 30)).save(path, format="PNG")
    return path


def jpeg_image(directory: Path, width: int = 48, height: int = 40) -> Path:
    path = directory / "image.jpg"
    Image.new("RGB", (width, height), (30, 30, 200)).save(path, format="JPEG")
    return path


def pixel_bomb_png(directory: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A PNG whose header claims ``width`` x ``height`` pixels, as decompression bombs do."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 16)
    return _write(
        directory / "bomb.png",
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND"),
    )


def truncated_png(directory: Path) -> Path:
    whole = png_image(directory, 256, 256).read_bytes()
    return _write(directory / "truncated.png", whole[: len(whole) // 2])


# Real prose every Debian system carries (base-files is essential), for documents that read
# like documents: licence texts.
COMMON_LICENSES = Path("/usr/share/common-licenses")


def prose_pdf(
    directory: Path,
    text: str,
    *,
    name: str = "prose.pdf",
    font: str = "Times-Roman",
    size: float = 11,
) -> Path:
    """A born-digital A4 PDF typesetting ``text``: a paragraph at each blank line, a short
    line in capitals or ending in a colon set as a heading, as a word processor would."""
    from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
    from reportlab.lib.styles import ParagraphStyle  # type: ignore[import-untyped]
    from reportlab.platypus import Paragraph, SimpleDocTemplate  # type: ignore[import-untyped]

    body = ParagraphStyle("body", fontName=font, fontSize=size, leading=size * 1.3)
    heading = ParagraphStyle(
        "heading", fontName="Helvetica-Bold", fontSize=size * 1.4, leading=size * 2
    )
    story = []
    for part in re.split(r"\n\s*\n", text):
        words = " ".join(part.split())
        if not words:
            continue
        escaped = words.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        short = len(words) < 60 and (words.isupper() or words.endswith(":"))
        story.append(Paragraph(escaped, heading if short else body))
    path = directory / name
    SimpleDocTemplate(str(path), pagesize=A4).build(story)
    return path


def scanned_pdf(
    directory: Path,
    original: Path | bytes,
    *,
    pages: list[int] | None = None,
    dpi: int = 200,
    name: str = "scan.pdf",
) -> Path:
    """An image-only PDF of ``original``'s pages (0-based ``pages``, default all), each
    rendered to a ``dpi`` greyscale image, as a scanner makes: no text layer at all."""
    import pypdfium2 as pdfium  # type: ignore[import-untyped]

    document = pdfium.PdfDocument(original)
    try:
        images = [
            document[index].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            for index in (range(len(document)) if pages is None else pages)
        ]
    finally:
        document.close()
    path = directory / name
    images[0].save(path, save_all=True, append_images=images[1:], resolution=dpi)
    return path


def pdf_page_images(original: Path | bytes, *, dpi: int = 200) -> list[Image.Image]:
    """``original``'s pages as ``dpi`` greyscale images (the pages of a scan)."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(original)
    try:
        return [
            document[index].render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
            for index in range(len(document))
        ]
    finally:
        document.close()


def multipage_tiff(directory: Path, images: list[Image.Image], *, dpi: int = 200) -> Path:
    """A multi-page TIFF (LZW), one page per image: what a document scanner files."""
    path = directory / "scan.tiff"
    images[0].save(
        path, save_all=True, append_images=images[1:], compression="tiff_lzw", dpi=(dpi, dpi)
    )
    return path


def blank_scan_pdf(directory: Path, *, noise: bool = False, dpi: int = 200) -> Path:
    """A one-page image-only PDF of a blank sheet, or of grey noise: nothing legible."""
    size = (int(8.5 * dpi), 11 * dpi)
    if noise:
        rng = random.Random(14)
        image = Image.frombytes("L", size, rng.randbytes(size[0] * size[1]))
    else:
        image = Image.new("L", size, 255)
    path = directory / ("noise.pdf" if noise else "blank.pdf")
    image.save(path, resolution=dpi)
    return path


def many_frames_tiff(directory: Path, frames: int) -> Path:
    """A TIFF of ``frames`` 1x1 pages, a few dozen bytes each (all share one pixel)."""
    return _write(directory / "many-frames.tiff", _tiff([(1, 1)] * frames))


def huge_frame_tiff(directory: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """A TIFF whose second page declares ``width`` x ``height`` pixels (its data is 1 byte):
    the first page is harmless, so only a check of every frame's size refuses it."""
    return _write(directory / "huge-frame.tiff", _tiff([(1, 1), (width, height)]))


def _tiff(sizes: list[tuple[int, int]]) -> bytes:
    """A little-endian, uncompressed 8-bit greyscale TIFF with one page per size; every
    page's strip is the same byte (white), so a page declaring more pixels is damaged."""
    strip_at = 8
    out = bytearray(b"II*\x00" + struct.pack("<I", strip_at + 1) + b"\xff")
    tags = (256, 257, 258, 259, 262, 273, 277, 278, 279)
    for number, (width, height) in enumerate(sizes):
        at = len(out)
        values = (width, height, 8, 1, 1, strip_at, 1, height, 1)
        entries = b"".join(
            struct.pack("<HHII", tag, 4, 1, value)  # type 4: LONG
            for tag, value in zip(tags, values, strict=True)
        )
        following = at + 2 + len(entries) + 4 if number + 1 < len(sizes) else 0
        out += struct.pack("<H", len(tags)) + entries + struct.pack("<I", following)
    return bytes(out)


def _chunk(kind: bytes, data: bytes = b"") -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _assemble(objects: list[bytes]) -> bytes:
    """A PDF of ``objects`` (numbered from 1, object 1 the catalog) and a correct xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
