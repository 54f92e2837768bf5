"""Invoice lines as files for the browser: CSV, JSON and XLSX, from the rows billing
publishes (`weibao.shared.public.billing`: the columns and what each holds). Streams take
a sync ``Iterable`` or an ``AsyncIterable`` of lines and keep memory constant however
many rows there are.

Per format:

- CSV: UTF-8 with a BOM (so Excel opens Chinese text), a header row, ``\\r\\n`` line ends,
  RFC 4180 quoting. A text cell that starts with ``=``, ``+``, ``-``, ``@``, tab or CR is
  prefixed with ``'`` so that Excel shows it instead of evaluating it (CSV injection);
  numbers, dates and money are never touched.
- JSON (and the rows of ``export.lines``): objects keyed by the column names, values as in
  CSV without the ``'`` prefix (money and quantities as strings, ``line_no`` as a number),
  UTF-8, Chinese unescaped.
- XLSX: one sheet, header row frozen; money as numbers formatted ``0.00`` (``unit_price``
  ``0.00##``), ``vat_rate`` as a number formatted ``0%``, ``issued_on`` as a date, ``quantity``
  and ``line_no`` as numbers, everything else as text (never as a formula). Write-only: rows
  go to a temporary file as they come, not into memory.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from typing import IO, Any, TypeAlias

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from weibao.shared.public.billing import (
    CENT,
    COLUMNS,
    MONEY,
    PERIOD,
    TEXT_INDEXES,
    YEAR,
    ExportLine,
    row_of,
    texts_of,
)

BOM = b"\xef\xbb\xbf"
CHUNK_BYTES = 64 * 1024  # streams yield once this much text is buffered
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# XLSX column widths (Excel character units; a Chinese character takes about two).
_WIDTHS: dict[str, float] = {
    "invoice_number": 16, "invoice_id": 14, "status": 11, "issued_on": 11, "customer_id": 12,
    "customer_name": 28, "period": 9, "line_no": 7, "item_id": 14, "kind": 14, "description": 44,
    "quantity": 9, "unit": 6, "unit_price": 12, "net": 13, "vat_rate": 8, "vat": 12, "gross": 13,
    "clauses": 12, "sources": 30, "credit_id": 16,
}  # fmt: skip


Lines: TypeAlias = Iterable[ExportLine] | AsyncIterable[ExportLine]


async def aiter_lines(lines: Lines) -> AsyncIterator[ExportLine]:
    """Iterate a sync or async source of lines asynchronously, one at a time."""
    if isinstance(lines, AsyncIterable):
        async for line in lines:
            yield line
    else:
        for line in lines:
            yield line


async def filter_lines(
    lines: Lines, *, period: str | None = None, customer_id: str | None = None
) -> AsyncIterator[ExportLine]:
    """Keep the lines of one billing period and/or one customer; ``None`` keeps all.

    ``period`` is a month ``YYYY-MM`` or a whole year ``YYYY``."""
    if period is not None and not (PERIOD.fullmatch(period) or YEAR.fullmatch(period)):
        raise ValueError(f"period filter must be YYYY-MM or YYYY, got {period!r}")
    async for line in aiter_lines(lines):
        if customer_id is not None and line.customer_id != customer_id:
            continue
        if period is not None and line.period != period and not line.period.startswith(period + "-"):
            continue
        yield line


def _defuse(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_TRIGGERS) else value


async def csv_stream(lines: Lines) -> AsyncIterator[bytes]:
    """CSV bytes: BOM and header first, then the rows in chunks of about ``CHUNK_BYTES``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield BOM + buffer.getvalue().encode()
    buffer.seek(0)
    buffer.truncate()
    async for line in aiter_lines(lines):
        row = texts_of(line)
        for i in TEXT_INDEXES:
            row[i] = _defuse(str(row[i]))
        writer.writerow(row)
        if buffer.tell() >= CHUNK_BYTES:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


async def json_stream(lines: Lines) -> AsyncIterator[bytes]:
    """A JSON array of row objects, streamed element by element in chunks of about ``CHUNK_BYTES``."""
    parts: list[str] = ["["]
    size = 1
    separator = ""
    async for line in aiter_lines(lines):
        element = separator + json.dumps(row_of(line), ensure_ascii=False)
        separator = ","
        parts.append(element)
        size += len(element)
        if size >= CHUNK_BYTES:
            yield "".join(parts).encode()
            parts.clear()
            size = 0
    parts.append("]")
    yield "".join(parts).encode()


_XLSX_FORMATS = {"net": "0.00", "vat": "0.00", "gross": "0.00", "unit_price": "0.00##", "vat_rate": "0%",
                 "issued_on": "yyyy-mm-dd"}


def _xlsx_row(sheet: WriteOnlyWorksheet, styled: dict[str, Cell], line: ExportLine) -> list[Any]:
    """One row's cells. A write-only sheet writes a row out as it is appended, so each
    styled column reuses one cell (a new cell per value costs a style lookup each), and
    plain values go as they are, but for text that would read as a formula."""
    row: list[Any] = []
    for name in COLUMNS:
        value = getattr(line, name)
        if name in styled:
            cell = styled[name]
            cell.value = value.quantize(CENT) if name in MONEY else value
            row.append(cell)
        elif name in {"quantity", "line_no"}:
            row.append(value)
        else:
            text = ILLEGAL_CHARACTERS_RE.sub("", ";".join(value) if isinstance(value, tuple) else value)
            if text.startswith("="):
                cell = WriteOnlyCell(sheet, value=text)
                cell.data_type = "s"  # text, never a formula
                row.append(cell)
            else:
                row.append(text)
    return row


async def xlsx_file(lines: Lines, target: str | os.PathLike[str] | IO[bytes]) -> int:
    """Write the lines as an XLSX workbook to a path or a binary file object; return the row count.

    The workbook is write-only, so rows go to a temporary file as they come, not into memory."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("结算明细")
    for index, name in enumerate(COLUMNS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = _WIDTHS[name]
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for name in COLUMNS:
        cell = WriteOnlyCell(sheet, value=name)
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    styled = {}
    for name, number_format in _XLSX_FORMATS.items():
        styled[name] = WriteOnlyCell(sheet)
        styled[name].number_format = number_format
    count = 0
    async for line in aiter_lines(lines):
        sheet.append(_xlsx_row(sheet, styled, line))
        count += 1
    await asyncio.to_thread(workbook.save, target)
    return count
