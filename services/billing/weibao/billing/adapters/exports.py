"""Invoice exports: CSV, XLSX and JSON with stable columns, and a printable A4 invoice page.

The module knows nothing about how invoices are stored. It takes ``ExportLine`` rows, one per
invoice line, from a sync ``Iterable`` or an ``AsyncIterable`` (e.g. a database cursor), and
streams them out: memory stays constant however many rows there are.

Columns (``COLUMNS``), in this order. They are a published interface: add columns only at the
end, never rename, reorder or reformat them. Money is Chinese yuan, exact to the fen (rule B8),
written with exactly two decimals and a ``.`` separator, never as a float.

- ``invoice_number`` -- the number printed on the invoice; text.
- ``invoice_id`` -- the invoice's stable id in the billing service; text.
- ``status`` -- the invoice's status as billing names it (e.g. ``issued``, ``credit_note``); text.
- ``issued_on`` -- date of issue; ``YYYY-MM-DD``.
- ``customer_id`` -- the customer's (甲方) id; text.
- ``customer_name`` -- the customer's name, usually Chinese; text.
- ``period`` -- the billing month the line belongs to; ``YYYY-MM``.
- ``line_no`` -- 1-based position of the line on its invoice; integer.
- ``item_id`` -- the id of the billed item (line) in the billing service; text.
- ``kind`` -- the line's kind (travel, hardware day, annual fee, ...), which sets its VAT rate; text.
- ``description`` -- free text, may hold commas, quotes and newlines; text.
- ``quantity`` -- how many units; a plain decimal without exponent (``3``, ``1.5``).
- ``unit`` -- the unit of ``quantity`` (``天``, ``人``, ``次``, ...); text.
- ``unit_price`` -- price of one unit before VAT; yuan with at least two decimals, more only when
  the price is finer than a fen (a prorated fee): ``61.70``, ``61.705``. Shown, not recomputed.
- ``net`` -- line amount before VAT; money, ``0.00`` (negative on a credit note).
- ``vat_rate`` -- VAT rate as a fraction, at least two decimals (``0.13``, ``0.06``, ``0.00``).
- ``vat`` -- VAT amount of the line; money, ``0.00``.
- ``gross`` -- ``net + vat``; money, ``0.00``.
- ``clauses`` -- the rules the line is charged under (provenance), joined with ``;`` (``B2;C4``).
- ``sources`` -- the events the line was derived from (B8), joined with ``;``
  (``dispatch:12;dispatch:13``).

Per format:

- CSV: UTF-8 with a BOM (so Excel opens Chinese text), a header row, ``\\r\\n`` line ends,
  RFC 4180 quoting. A text cell that starts with ``=``, ``+``, ``-``, ``@``, tab or CR is
  prefixed with ``'`` so that Excel shows it instead of evaluating it (CSV injection);
  numbers, dates and money are never touched.
- JSON: one array of objects keyed by the column names, values as in CSV without the
  ``'`` prefix (money and quantities as strings, ``line_no`` as a number), UTF-8, Chinese unescaped.
- XLSX: one sheet, header row frozen; money as numbers formatted ``0.00`` (``unit_price``
  ``0.00##``), ``vat_rate`` as a number formatted ``0%``, ``issued_on`` as a date, ``quantity``
  and ``line_no`` as numbers, everything else as text (never as a formula).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from html import escape
from typing import IO, Any, TypeAlias

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE, Cell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

__all__ = [
    "COLUMNS",
    "ExportLine",
    "InvoiceView",
    "Lines",
    "VatTotal",
    "aiter_lines",
    "csv_stream",
    "filter_lines",
    "invoice_html",
    "json_stream",
    "vat_totals",
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
    "clauses": 12, "sources": 30,
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
    """One invoice line, flattened with its invoice's header: one row of every export."""

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
    ]


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
        element = separator + json.dumps(dict(zip(COLUMNS, _texts(line), strict=True)), ensure_ascii=False)
        separator = ","
        parts.append(element)
        size += len(element)
        if size >= CHUNK_BYTES:
            yield "".join(parts).encode()
            parts.clear()
            size = 0
    parts.append("]")
    yield "".join(parts).encode()


def _xlsx_cell(sheet: WriteOnlyWorksheet, name: str, value: Any) -> Cell:
    if name in _MONEY:
        cell = WriteOnlyCell(sheet, value=value.quantize(CENT))
        cell.number_format = "0.00"
    elif name == "unit_price":
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "0.00##"
    elif name == "vat_rate":
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "0%"
    elif name == "issued_on":
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "yyyy-mm-dd"
    elif name in {"quantity", "line_no"}:
        cell = WriteOnlyCell(sheet, value=value)
    else:
        if isinstance(value, tuple):
            value = ";".join(value)
        cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("", value))
        cell.data_type = "s"  # text, even when it starts with "=" or reads like "#N/A"
    return cell


async def xlsx_file(lines: Lines, target: str | os.PathLike[str] | IO[bytes]) -> int:
    """Write the lines as an XLSX workbook to a path or a binary file object; return the row count.

    The workbook is write-only, so rows go to a temporary file as they come, not into memory."""
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("发票明细")
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
    count = 0
    async for line in aiter_lines(lines):
        sheet.append([_xlsx_cell(sheet, name, getattr(line, name)) for name in COLUMNS])
        count += 1
    await asyncio.to_thread(workbook.save, target)
    return count


@dataclass(frozen=True, slots=True)
class VatTotal:
    """The sums of an invoice's lines at one VAT rate (or of all lines, for 合计)."""

    vat_rate: Decimal | None
    net: Decimal
    vat: Decimal
    gross: Decimal


def vat_totals(lines: Iterable[ExportLine]) -> tuple[VatTotal, ...]:
    """Totals by VAT rate, highest rate first."""
    sums: dict[Decimal, tuple[Decimal, Decimal, Decimal]] = {}
    for line in lines:
        net, vat, gross = sums.get(line.vat_rate, (Decimal(0), Decimal(0), Decimal(0)))
        sums[line.vat_rate] = (net + line.net, vat + line.vat, gross + line.gross)
    return tuple(VatTotal(rate, *sums[rate]) for rate in sorted(sums, reverse=True))


@dataclass(frozen=True, slots=True)
class InvoiceView:
    """What the printable page shows; ``totals`` must be ``vat_totals(lines)`` (``of`` builds it)."""

    number: str
    issued_on: date
    customer_id: str
    customer_name: str
    period: str
    lines: Sequence[ExportLine]
    totals: tuple[VatTotal, ...] = field(default=())

    def __post_init__(self) -> None:
        object.__setattr__(self, "lines", tuple(self.lines))
        for line in self.lines:
            if line.invoice_number != self.number:
                raise ValueError(f"line {line.line_no} belongs to invoice {line.invoice_number}, not {self.number}")
        if self.totals != vat_totals(self.lines):
            raise ValueError("totals do not match the lines")

    @classmethod
    def of(cls, lines: Sequence[ExportLine]) -> InvoiceView:
        """The view of one invoice's lines (at least one), header taken from the first."""
        first = lines[0]
        return cls(
            number=first.invoice_number,
            issued_on=first.issued_on,
            customer_id=first.customer_id,
            customer_name=first.customer_name,
            period=first.period,
            lines=tuple(lines),
            totals=vat_totals(lines),
        )

    @property
    def total(self) -> VatTotal:
        """合计: all rates together."""
        return VatTotal(
            None,
            sum((t.net for t in self.totals), Decimal(0)),
            sum((t.vat for t in self.totals), Decimal(0)),
            sum((t.gross for t in self.totals), Decimal(0)),
        )


def _yuan(value: Decimal) -> str:
    return f"{value.quantize(CENT) + 0:,.2f}"


def _price(value: Decimal) -> str:
    return _yuan(value) if value == value.quantize(CENT) else f"{value.normalize():,f}"


def _percent(rate: Decimal) -> str:
    return _plain(rate * 100) + "%"


_CSS = """
@page { size: A4; margin: 15mm; }
* { box-sizing: border-box; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", SimSun,
       sans-serif; font-size: 10pt; color: #000; margin: 0; }
h1 { font-size: 18pt; text-align: center; letter-spacing: 0.5em; margin: 0 0 6mm; }
dl.head { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 1mm 4mm; margin: 0 0 5mm; }
dl.head dt { font-weight: bold; }
dl.head dd { margin: 0; }
table { width: 100%; border-collapse: collapse; }
th, td { border: 0.3mm solid #444; padding: 1.2mm 1.5mm; vertical-align: top; }
th { background: #eee; }
thead { display: table-header-group; }
tr { page-break-inside: avoid; break-inside: avoid; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.desc { white-space: pre-wrap; }
.clauses { font-size: 8pt; color: #333; margin-top: 0.8mm; }
.note { font-size: 7.5pt; color: #555; }
table.totals { width: 60%; margin: 5mm 0 0 auto; }
tr.grand td { font-weight: bold; }
"""


def invoice_html(invoice: InvoiceView) -> str:
    """A self-contained printable A4 page (inline CSS, no external assets); all content escaped."""
    e = escape
    rows = []
    for line in invoice.lines:
        clauses = " · ".join(line.clauses)
        sources = "; ".join(line.sources)
        rows.append(
            "<tr>"
            f'<td class="num">{line.line_no}</td>'
            f'<td><div class="desc">{e(line.description)}</div>'
            + (f'<div class="clauses">依据 {e(clauses)}</div>' if clauses else "")
            + (f'<div class="note">来源：{e(sources)}</div>' if sources else "")
            + "</td>"
            f'<td class="num">{e(_plain(line.quantity))}</td>'
            f"<td>{e(line.unit)}</td>"
            f'<td class="num">{_price(line.unit_price)}</td>'
            f'<td class="num">{_yuan(line.net)}</td>'
            f'<td class="num">{_percent(line.vat_rate)}</td>'
            f'<td class="num">{_yuan(line.vat)}</td>'
            f'<td class="num">{_yuan(line.gross)}</td>'
            "</tr>"
        )
    totals = [
        f'<tr><td>税率 {_percent(t.vat_rate)}</td><td class="num">{_yuan(t.net)}</td>'
        f'<td class="num">{_yuan(t.vat)}</td><td class="num">{_yuan(t.gross)}</td></tr>'
        for t in invoice.totals
        if t.vat_rate is not None
    ]
    grand = invoice.total
    totals.append(
        f'<tr class="grand"><td>合计</td><td class="num">{_yuan(grand.net)}</td>'
        f'<td class="num">{_yuan(grand.vat)}</td><td class="num">¥{_yuan(grand.gross)}</td></tr>'
    )
    newline = "\n"
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>发票 {e(invoice.number)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>发票</h1>
<dl class="head">
<dt>发票号码</dt><dd>{e(invoice.number)}</dd>
<dt>开票日期</dt><dd>{invoice.issued_on.isoformat()}</dd>
<dt>客户</dt><dd>{e(invoice.customer_name)}</dd>
<dt>客户编号</dt><dd>{e(invoice.customer_id)}</dd>
<dt>账期</dt><dd>{e(invoice.period)}</dd>
</dl>
<table class="lines">
<thead><tr><th>序号</th><th>项目</th><th>数量</th><th>单位</th><th>单价</th><th>金额</th><th>税率</th><th>税额</th>\
<th>价税合计</th></tr></thead>
<tbody>
{newline.join(rows)}
</tbody>
</table>
<table class="totals">
<thead><tr><th>税率</th><th>金额</th><th>税额</th><th>价税合计</th></tr></thead>
<tbody>
{newline.join(totals)}
</tbody>
</table>
<p class="note">金额单位：人民币元。每行注明计费依据（协议条款）及来源事件。</p>
</body>
</html>
"""
