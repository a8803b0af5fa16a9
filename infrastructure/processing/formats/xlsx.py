"""XLSX (Excel) as blocks, with openpyxl: per sheet a level-2 heading, then a table.

The workbook is opened read-only (rows stream from the sheet's XML instead of a cell
object per cell in memory) with ``data_only``: a cell holds the value Excel last
calculated, not its formula. Empty rows are left out and the table is cut at
``max_cells`` cells over the whole workbook; a cut is recorded as the ``truncated`` fact,
not written into the text.

Runs in the limited child, after ``archive.check_archive``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator
from typing import Any

from infrastructure.processing.formats import emit
from infrastructure.processing.formats.archive import ArchiveLimits, check_archive
from infrastructure.processing.formats.errors import library_errors_are_corrupt
from infrastructure.processing.limits import Json


def parse_xlsx(path: str, archive_limits: dict[str, Json], max_cells: int) -> Iterator[Json]:
    """Runs in the child: yields each sheet's heading and table, then the facts."""
    check_archive(path, ArchiveLimits.from_json(archive_limits))
    # With defusedxml installed (odfpy needs it) openpyxl reads sheets through it, a third
    # slower; check_archive has already refused every DTD, which is all it guards against.
    # Read when openpyxl is first imported: a process that preloads it sets this first.
    os.environ.setdefault("OPENPYXL_DEFUSEDXML", "False")
    import openpyxl

    sheets = rows = 0
    budget = CellBudget(max_cells)
    with library_errors_are_corrupt("Excel workbook"):
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            for sheet in workbook.worksheets:
                sheets += 1
                yield from emit.as_json([emit.heading(2, str(sheet.title))])
                # The dimension a file declares may be anything: read what the cells say.
                sheet.reset_dimensions()
                kept = list(budget.rows(sheet.iter_rows(values_only=True)))
                rows += len(kept)
                if kept:
                    yield from emit.as_json([emit.table(kept)])
        finally:
            workbook.close()
    yield from emit.as_json([emit.facts(sheets=sheets, rows=rows, truncated=budget.exhausted)])


class CellBudget:
    """The cells still to be read, over every sheet of a workbook; ``exhausted`` once a
    row did not fit."""

    def __init__(self, cells: int) -> None:
        self.left = cells
        self.exhausted = False

    def take(self, cells: int) -> bool:
        """Pays for a row of ``cells`` cells; False (and exhausted) when it does not fit."""
        if cells > self.left:
            self.exhausted = True
            return False
        self.left -= cells
        return True

    def rows(self, values: Iterable[tuple[Any, ...]]) -> Iterator[list[str]]:
        """The non-empty rows of ``values`` as text, while the budget lasts."""
        for row in values:
            cells = [cell_text(value) for value in row]
            while cells and not cells[-1]:
                cells.pop()
            if not cells:
                continue
            if not self.take(len(cells)):
                return
            yield cells


def cell_text(value: object) -> str:
    """A cell's value as Excel shows it, near enough: dates in ISO 8601, booleans in
    capitals, whole numbers without a decimal point."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, dt.datetime):
        if value.time() == dt.time():
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return emit.clean(str(value))
