"""The extractors (``extraction.EXTRACTORS``) of the office, web and e-mail families: each
runs its format's parser in the limited child and writes what it yields.

The parser (``formats.docx`` and its siblings) reads a local copy of the upload, by path,
and yields blocks, then one facts item (``emit.facts``). The child may have been taken
over by the file it parses, so everything it sends is checked here: each block with
``check_block``, the facts for their shape, and their order (facts last, once). A
document is parsed in one go: these formats take seconds at most, so a retried attempt
starts over instead of resuming. While the child is silent, and every few seconds while
blocks flow, the job heartbeats.

The parser child runs under the same process limits as the PDF parser's
(``PDF_CPU_SECONDS``, ``PDF_MEMORY_MB``, ``PDF_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeAlias

from application.processing import ContentWarning
from infrastructure.processing.blocks import BadBlock, check_block
from infrastructure.processing.document import DocumentWriter
from infrastructure.processing.formats.docx import parse_docx
from infrastructure.processing.formats.emit import FACTS
from infrastructure.processing.formats.eml import parse_eml
from infrastructure.processing.formats.html import parse_html
from infrastructure.processing.formats.odf import parse_odf
from infrastructure.processing.formats.pptx import parse_pptx
from infrastructure.processing.formats.xlsx import parse_xlsx
from infrastructure.processing.limits import ChildFailed, Json, run_limited

if TYPE_CHECKING:
    # Only for annotations: extraction.py imports this module for its EXTRACTORS table.
    from infrastructure.processing.extraction import ExtractionJob

Details: TypeAlias = dict[str, str | bool | int]
# What the facts of a (possibly hostile) child may hold.
_MAX_FACTS = 16
_MAX_FACT_CHARS = 200


def extract_docx_content(job: ExtractionJob, writer: DocumentWriter) -> Details:
    """DOCX: headings, paragraphs, lists and tables (``formats.docx``)."""
    return _parse_in_child(job, writer, ".docx", parse_docx, job.options.archive.to_json())


def extract_xlsx_content(job: ExtractionJob, writer: DocumentWriter) -> Details:
    """XLSX: per sheet a heading and a table, cells bounded (``formats.xlsx``)."""
    return _parse_in_child(
        job,
        writer,
        ".xlsx",
        parse_xlsx,
        job.options.archive.to_json(),
        job.options.spreadsheet_max_cells,
    )


def extract_pptx_content(job: ExtractionJob, writer: DocumentWriter) -> Details:
    """PPTX: a page per slide, its title, text, tables and notes (``formats.pptx``)."""
    return _parse_in_child(job, writer, ".pptx", parse_pptx, job.options.archive.to_json())


def extract_odf_content(job: ExtractionJob, writer: DocumentWriter) -> Details:
    """ODT, ODS and ODP, mapped as their OOXML kin (``formats.odf``)."""
    return _parse_in_child(
        job,
        writer,
        ".odf",
        parse_odf,
        job.options.archive.to_json(),
        job.options.spreadsheet_max_cells,
    )


def extract_html_content(job: ExtractionJob, writer: DocumentWriter) -> Details:
    """HTML: its structure without the page's chrome, in its charset (``formats.html``)."""
    return _parse_in_child(job, writer, ".html", parse_html)


def extract_email_content(job: ExtractionJob, writer: DocumentWriter) -> Details:
    """E-mail: header fields, body, attachments listed (``formats.eml``)."""
    return _parse_in_child(job, writer, ".eml", parse_eml)


def _parse_in_child(
    job: ExtractionJob,
    writer: DocumentWriter,
    suffix: str,
    parse: Callable[..., Iterator[Json]],
    *args: Json,
) -> Details:
    details: Details | None = None
    beat_at = time.monotonic() + job.options.heartbeat_every_seconds
    with _local_copy(job.source, suffix) as path:
        items = run_limited(
            parse, str(path), *args, limits=job.options.pdf.process, on_wait=job.heartbeat
        )
        with closing(items):
            for item in items:
                if details is not None:
                    raise ChildFailed("the parser sent something after its facts")
                if isinstance(item, dict) and set(item) == {FACTS}:
                    details = _details(item[FACTS])
                    continue
                try:
                    writer.add(check_block(item))
                except BadBlock as err:
                    raise ChildFailed(
                        f"the parser sent something that is not a block: {err}"
                    ) from None
                if time.monotonic() >= beat_at:
                    job.heartbeat()
                    beat_at = time.monotonic() + job.options.heartbeat_every_seconds
    if details is None:
        raise ChildFailed("the parser ended without its facts")
    if details.get("truncated") is True:
        writer.warn(ContentWarning.TRUNCATED)
    return details


def _details(value: Json) -> Details:
    """The child's facts, if they are what ``ContentFacts.details`` may hold."""
    if not isinstance(value, dict) or len(value) > _MAX_FACTS:
        raise ChildFailed(f"the parser sent facts of the wrong shape: {value!r:.200}")
    details: Details = {}
    for key, fact in value.items():
        if (
            len(key) > _MAX_FACT_CHARS
            or not isinstance(fact, str | bool | int)
            or (isinstance(fact, str) and len(fact) > _MAX_FACT_CHARS)
        ):
            raise ChildFailed(f"the parser sent a fact of the wrong shape: {key!r:.100}")
        details[key] = fact
    return details


@contextmanager
def _local_copy(source: BinaryIO, suffix: str) -> Iterator[Path]:
    # The child opens the document by path (zipfile needs to seek); a blob store streams.
    # openpyxl refuses a path whose name does not end as a workbook's does.
    with tempfile.NamedTemporaryFile(prefix="extract-", suffix=suffix) as copy:
        shutil.copyfileobj(source, copy)
        copy.flush()
        yield Path(copy.name)
