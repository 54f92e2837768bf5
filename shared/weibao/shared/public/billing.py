"""What billing publishes: the export row of an invoice line (a message, not a format).

The billing service answers `weibao.billing.export.lines` with pages of rows keyed by
``COLUMNS`` (``row_of``); the gateway, which imports no service, turns them back into
``ExportLine`` (``line_of``) and writes CSV, XLSX or JSON for the browser
(`weibao.gateway.export_files`).

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

"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

__all__ = ["CENT", "COLUMNS", "MONEY", "PERIOD", "TEXT_INDEXES", "YEAR", "ExportLine", "line_of", "row_of", "texts_of"]

CENT = Decimal("0.01")

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

MONEY = frozenset({"net", "vat", "gross"})
_NUMERIC = MONEY | {"unit_price", "quantity", "vat_rate", "line_no", "issued_on", "period"}
TEXT_INDEXES = tuple(i for i, name in enumerate(COLUMNS) if name not in _NUMERIC)
PERIOD = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
YEAR = re.compile(r"\d{4}")

# An invoice's statuses once it exists: billing's domain decides with these (adding
# "none"), its lists filter by them and its export rows carry them.
InvoiceStatus = Literal["draft", "issued", "partially_paid", "paid", "credited"]



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
        for name in MONEY:
            _check_money(name, getattr(self, name))
        if self.gross != self.net + self.vat:
            raise ValueError(f"gross {self.gross} is not net {self.net} + vat {self.vat}")
        for name in ("quantity", "unit_price"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite():
                raise TypeError(f"{name} must be a finite Decimal, got {value!r}")
        if not isinstance(self.vat_rate, Decimal) or not Decimal(0) <= self.vat_rate < 1:
            raise ValueError(f"vat_rate must be a Decimal fraction in [0, 1), got {self.vat_rate!r}")
        if not PERIOD.fullmatch(self.period):
            raise ValueError(f"period must be YYYY-MM, got {self.period!r}")
        if self.line_no < 1:
            raise ValueError(f"line_no counts from 1, got {self.line_no}")
        _check_parts("clauses", self.clauses)
        _check_parts("sources", self.sources)


def _money(value: Decimal) -> str:
    return f"{value.quantize(CENT) + 0:f}"  # "+ 0" turns -0.00 into 0.00


def _plain(value: Decimal) -> str:
    return "0" if value == 0 else f"{value.normalize():f}"


def _at_least_cents(value: Decimal) -> str:
    """Two decimals, or more when the value is finer than that: unit prices and VAT rates."""
    return _money(value) if value == value.quantize(CENT) else _plain(value)


def texts_of(line: ExportLine) -> list[str | int]:
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
    return dict(zip(COLUMNS, texts_of(line), strict=True))


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
