"""What billing publishes for others to format: the export row of an invoice line.

The billing service answers `weibao.billing.export.lines` with pages of rows keyed by
``COLUMNS`` (``row_of``); the gateway, which imports no service, turns them back into
``ExportLine`` (``line_of``) and streams CSV, XLSX or JSON to the browser with the
functions here. Streams take a sync ``Iterable`` or an ``AsyncIterable`` of lines and
keep memory constant however many rows there are.

Columns (``COLUMNS``), in this order. They are a published interface: add columns only at
the end, never rename, reorder or reformat them. Money is Chinese yuan, exact to the fen
(rule B8), written with exactly two decimals and a ``.`` separator, never as a float.

- ``invoice_number`` -- the number of the invoice (``INV-2026-000001``); text.
- ``invoice_id`` -- the invoice's stable id in the billing service; text.
- ``status`` -- the invoice's status (``issued``, ``partially_paid``, ``paid``, ``credited``),
  or ``credit_note`` on the rows of a credit note; text.
- ``issued_on`` -- date of issue (of the credit note, on its rows); ``YYYY-MM-DD``.
- ``customer_id`` -- the customer's (甲方) id; text.
- ``customer_name`` -- the customer's name, usually Chinese; text.
- ``period`` -- the billing month the line belongs to; ``YYYY-MM`` (a per-visit invoice:
  the month its draft was opened).
- ``line_no`` -- 1-based position of the line on its invoice (on its credit note, for a
  credit note's rows); integer.
- ``item_id`` -- the id of the billed item in the billing service; text.
- ``kind`` -- the line's kind (``expense``, ``hardware_days``, ``annual_fee``, ...), which
  sets its VAT rate; text.
- ``description`` -- free text, may hold commas, quotes and newlines; text.
- ``quantity`` -- how many units; a plain decimal without exponent (``3``, ``1.5``);
  negative on a credit note.
- ``unit`` -- the unit of ``quantity`` (``天``, ``人``, ``次``, ...); text.
- ``unit_price`` -- price of one unit before VAT; yuan with at least two decimals, more only
  when the price is finer than a fen (a discounted or prorated price): ``61.70``, ``61.705``.
  Shown, not recomputed.
- ``net`` -- line amount before VAT; money, ``0.00`` (negative on a credit note).
- ``vat_rate`` -- VAT rate as a fraction, at least two decimals (``0.13``, ``0.06``).
- ``vat`` -- VAT amount of the line, rounded per line half-up to the fen; money.
- ``gross`` -- ``net + vat``; money.
- ``clauses`` -- the rules the line is charged under (provenance), joined with ``;`` (``B2;C4``).
- ``sources`` -- the events the line was derived from (B8), as ``<service>:<position>``
  joined with ``;`` (``dispatch:12;dispatch:13``).
- ``credit_id`` -- on a credit note's rows, the credit note's id; empty on an invoice's rows.

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
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import IO, Any, TypeAlias

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

__all__ = [
    "BOM",
    "COLUMNS",
    "ExportLine",
    "Lines",
    "aiter_lines",
    "csv_stream",
    "filter_lines",
    "json_stream",
    "line_of",
    "row_of",
    "xlsx_file",
]

CENT = Decimal("0.01")
BOM = b"\xef\xbb\xbf"
CHUNK_BYTES = 64 * 1024  # streams yield once this much text is buffered

COLUMNS: tuple[str, ...] = (
    "invoice_number",
    "invoice_id",
    "status",
    "issued_on",
    "customer_id",
    "customer_name",
    "period",
    "line_no",
    "item_id",
    "kind",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "net",
    "vat_rate",
    "vat",
    "gross",
    "clauses",
    "sources",
    "credit_id",
)

_MONEY = frozenset({"net", "vat", "gross"})
_NUMERIC = _MONEY | {"unit_price", "quantity", "vat_rate", "line_no", "issued_on", "period"}
_TEXT_INDEXES = tuple(i for i, name in enumerate(COLUMNS) if name not in _NUMERIC)
_PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
_YEAR = re.compile(r"\d{4}")
_FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

# XLSX column widths (Excel character units; a Chinese character takes about two).
_WIDTHS: dict[str, float] = {
    "invoice_number": 16, "invoice_id": 14, "status": 11, "issued_on": 11, "customer_id": 12,
    "customer_name": 28, "period": 9, "line_no": 7, "item_id": 14, "kind": 14, "description": 44,
    "quantity": 9, "unit": 6, "unit_price": 12, "net": 13, "vat_rate": 8, "vat": 12, "gross": 13,
    "clauses": 12, "sources": 30, "credit_id": 16,
}  # fmt: skip


def _check_money(name: str, value: object) -> None:
    if not isinstance(value, Decimal):  # a float would already have lost the fen
        raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")
    if not value.is_finite() or value != value.quantize(CENT):
        raise ValueError(f"{name} must be exact yuan and fen (rule B8), got {value}")


def _check_parts(name: str, parts: tuple[str, ...]) -> None:
    for part in parts:
        if not part or ";" in part:
            raise ValueError(f"{name} entries must be non-empty and hold no ';': {part!r}")


@dataclass(frozen=True, slots=True)
class ExportLine:
    """One invoice (or credit note) line, flattened with its invoice's header: one row of
    every export."""

    invoice_number: str
    invoice_id: str
    status: str
    issued_on: date
    customer_id: str
    customer_name: str
    period: str
    line_no: int
    item_id: str
    kind: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net: Decimal
    vat_rate: Decimal
    vat: Decimal
    gross: Decimal
    clauses: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    credit_id: str = ""

    def __post_init__(self) -> None:
        for name in _MONEY:
            _check_money(name, getattr(self, name))
        if self.gross != self.net + self.vat:
            raise ValueError(f"gross {self.gross} is not net {self.net} + vat {self.vat}")
        for name in ("quantity", "unit_price"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise TypeError(f"{name} must be a finite Decimal, got {value!r}")
        if not isinstance(self.vat_rate, Decimal) or not Decimal(0) <= self.vat_rate < 1:
            raise ValueError(f"vat_rate must be a Decimal fraction in [0, 1), got {self.vat_rate!r}")
        if not _PERIOD.fullmatch(self.period):
            raise ValueError(f"period must be YYYY-MM, got {self.period!r}")
        if self.line_no < 1:
            raise ValueError(f"line_no counts from 1, got {self.line_no}")
        _check_parts("clauses", self.clauses)
        _check_parts("sources", self.sources)


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
    if period is not None and not (_PERIOD.fullmatch(period) or _YEAR.fullmatch(period)):
        raise ValueError(f"period filter must be YYYY-MM or YYYY, got {period!r}")
    async for line in aiter_lines(lines):
        if customer_id is not None and line.customer_id != customer_id:
            continue
        if period is not None and line.period != period and not line.period.startswith(period + "-"):
            continue
        yield line


def _money(value: Decimal) -> str:
    return f"{value.quantize(CENT) + 0:f}"  # "+ 0" turns -0.00 into 0.00


def _plain(value: Decimal) -> str:
    return "0" if value == 0 else f"{value.normalize():f}"


def _at_least_cents(value: Decimal) -> str:
    """Two decimals, or more when the value is finer than that: unit prices and VAT rates."""
    return _money(value) if value == value.quantize(CENT) else _plain(value)


def _texts(line: ExportLine) -> list[str | int]:
    """The row as the text formats (CSV, JSON) write it, in ``COLUMNS`` order."""
    return [
        line.invoice_number,
        line.invoice_id,
        line.status,
        line.issued_on.isoformat(),
        line.customer_id,
        line.customer_name,
        line.period,
        line.line_no,
        line.item_id,
        line.kind,
        line.description,
        _plain(line.quantity),
        line.unit,
        _at_least_cents(line.unit_price),
        _money(line.net),
        _at_least_cents(line.vat_rate),
        _money(line.vat),
        _money(line.gross),
        ";".join(line.clauses),
        ";".join(line.sources),
        line.credit_id,
    ]


def row_of(line: ExportLine) -> dict[str, str | int]:
    """The line as JSON data keyed by ``COLUMNS``: what `export.lines` answers."""
    return dict(zip(COLUMNS, _texts(line), strict=True))


def line_of(row: Mapping[str, Any]) -> ExportLine:
    """The line a row of `export.lines` (``row_of``) stands for; ValueError names the column
    at fault. Columns this reader does not know are ignored (readers ignore new fields)."""
    def text(name: str) -> str:
        value = row.get(name, "")
        if not isinstance(value, str):
            raise ValueError(f"{name}: text expected, got {value!r}")
        return value

    def decimal(name: str) -> Decimal:
        try:
            value = Decimal(text(name))
        except InvalidOperation as error:
            raise ValueError(f"{name}: not a decimal: {row.get(name)!r}") from error
        if not value.is_finite():
            raise ValueError(f"{name}: not a decimal: {row.get(name)!r}")
        return value

    def parts(name: str) -> tuple[str, ...]:
        joined = text(name)
        return tuple(joined.split(";")) if joined else ()

    line_no = row.get("line_no")
    if isinstance(line_no, bool) or not isinstance(line_no, int):
        raise ValueError(f"line_no: an integer expected, got {line_no!r}")
    try:
        issued_on = date.fromisoformat(text("issued_on"))
    except ValueError as error:
        raise ValueError(f"issued_on: not a date: {row.get('issued_on')!r}") from error
    return ExportLine(
        invoice_number=text("invoice_number"), invoice_id=text("invoice_id"), status=text("status"),
        issued_on=issued_on, customer_id=text("customer_id"), customer_name=text("customer_name"),
        period=text("period"), line_no=line_no, item_id=text("item_id"), kind=text("kind"),
        description=text("description"), quantity=decimal("quantity"), unit=text("unit"),
        unit_price=decimal("unit_price"), net=decimal("net"), vat_rate=decimal("vat_rate"), vat=decimal("vat"),
        gross=decimal("gross"), clauses=parts("clauses"), sources=parts("sources"), credit_id=text("credit_id"),
    )


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
        row = _texts(line)
        for i in _TEXT_INDEXES:
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
            cell.value = value.quantize(CENT) if name in _MONEY else value
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
