"""The printable A4 statement of an invoice, and stored invoices as export rows.

The export format itself (``ExportLine``, ``COLUMNS``, CSV, XLSX and JSON streams) is a
public schema in ``weibao.shared.public.billing``: the gateway formats exports with it.
What stays here is billing's own: turning an invoice as the log holds it into rows
(``lines_of``), and the A4 page the service renders (``invoice_html``).

The page is titled 结算单 (Statement of charges), not 发票: in China the official VAT
invoice (发票) is issued through the tax authority's system (金税), with its own code and
number; a page printed by billing is the statement the customer pays against and the
clerk invoices from. Calling it 发票 would pass it off as a tax document.

Below the lines and totals as issued (frozen, B8) the page lists each credit note of the
invoice (红字冲销: its id, date, reason and the lines it reverses) and the balance: the
total as issued, less the credit notes, less the payments received. Amounts in that part
are written as what they take off ("冲减", "减"), positive, so no figure of the page is a
negative number that a reader (or a copy into a spreadsheet) could add the wrong way."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from html import escape

from weibao.billing.domain.invoice import Invoice, Totals
from weibao.shared.errors import Rejected
from weibao.shared.public.billing import ExportLine

__all__ = ["CreditView", "InvoiceView", "Settlement", "VatTotal", "invoice_html", "lines_of", "sources_text",
           "vat_totals"]

CENT = Decimal("0.01")


def sources_text(sources: Iterable[tuple[str, int, str]]) -> tuple[str, ...]:
    """A line's sources as the export names them: ``<service>:<position>`` (B8)."""
    return tuple(f"{service}:{position}" for service, position, _type in sources)


def lines_of(invoice: Invoice, customer_name: str) -> list[ExportLine]:
    """An issued invoice's rows: its lines in order, then each credit note's lines (rule
    B8: a correction is a credit note, the invoice stays as issued).

    A credit note's row repeats the credited line's kind, unit, unit price and clauses,
    with the quantity negated, as a red-letter (红字) line shows it; its net, VAT and
    gross are the credit note's own (negative) figures."""
    number, issued_on = invoice.number, invoice.issued_on
    if number is None or issued_on is None:
        raise Rejected("draft", "invoice_id", "a draft has no number yet and is not exported; issue it first")
    head = {"invoice_number": number, "invoice_id": invoice.invoice_id, "customer_id": invoice.customer_id,
            "customer_name": customer_name, "period": invoice.month}
    rows = [ExportLine(**head, status=invoice.status, issued_on=issued_on, line_no=n, item_id=line.item_id,
                       kind=line.kind, description=line.description, quantity=line.quantity, unit=line.unit,
                       unit_price=line.unit_price, net=line.net, vat_rate=line.vat_rate, vat=line.vat,
                       gross=line.gross, clauses=line.clauses, sources=sources_text(line.sources))
            for n, line in enumerate(invoice.lines, start=1)]
    by_id = {line.item_id: line for line in invoice.lines}
    for note in invoice.credits:
        for n, credited in enumerate(note.lines, start=1):
            original = by_id[credited.item_id]
            rows.append(ExportLine(
                **head, status="credit_note", issued_on=note.on, line_no=n, item_id=credited.item_id,
                kind=original.kind, description=credited.description, quantity=-original.quantity,
                unit=original.unit, unit_price=original.unit_price, net=credited.net, vat_rate=credited.vat_rate,
                vat=credited.vat, gross=credited.gross, clauses=original.clauses,
                sources=sources_text(credited.sources), credit_id=note.credit_id))
    return rows


def _plain(value: Decimal) -> str:
    return "0" if value == 0 else f"{value.normalize():f}"


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


@dataclass(frozen=True, slots=True)
class CreditView:
    """One credit note as the page shows it: its rows as ``lines_of`` writes them (negative
    figures) and its totals (negative)."""

    credit_id: str
    on: date
    reason: str
    lines: tuple[ExportLine, ...]
    totals: Totals


@dataclass(frozen=True, slots=True)
class Settlement:
    """What became of the invoice after issue: its credit notes, and the balance.
    ``credited`` and ``paid`` are positive; ``outstanding`` is negative when a refund is due."""

    credits: tuple[CreditView, ...]
    credited: Decimal
    paid: Decimal
    outstanding: Decimal


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
section.credits { margin-top: 6mm; page-break-inside: avoid; break-inside: avoid; }
h2 { font-size: 12pt; margin: 6mm 0 2mm; }
dl.credit { display: grid; grid-template-columns: max-content 1fr max-content 1fr; gap: 1mm 4mm; margin: 0 0 2mm; }
dl.credit dt { font-weight: bold; }
dl.credit dd { margin: 0; }
table.credit-lines { margin-bottom: 3mm; }
"""


def _credits_html(settlement: Settlement, gross: Decimal) -> str:
    """The credit notes (红字冲销) and the balance after them and the payments."""
    e = escape
    parts: list[str] = []
    if settlement.credits:
        parts.append("<h2>红字冲销</h2>")
    for note in settlement.credits:
        rows = "\n".join(
            "<tr>"
            f'<td class="num">{line.line_no}</td>'
            f'<td><div class="desc">{e(line.description)}</div><div class="note">明细编号：{e(line.item_id)}</div></td>'
            f'<td class="num">{_percent(line.vat_rate)}</td>'
            f'<td class="num">{_yuan(-line.net)}</td>'
            f'<td class="num">{_yuan(-line.vat)}</td>'
            f'<td class="num">{_yuan(-line.gross)}</td>'
            "</tr>"
            for line in note.lines)
        parts.append(
            f'<div class="credit" data-credit-id="{e(note.credit_id)}">'
            '<dl class="credit">'
            f"<dt>冲销单号</dt><dd>{e(note.credit_id)}</dd>"
            f"<dt>冲销日期</dt><dd>{note.on.isoformat()}</dd>"
            f"<dt>冲销原因</dt><dd>{e(note.reason)}</dd>"
            "</dl>"
            '<table class="credit-lines">'
            "<thead><tr><th>序号</th><th>冲销项目</th><th>税率</th><th>冲减金额</th><th>冲减税额</th>"
            "<th>冲减价税合计</th></tr></thead>"
            f"<tbody>\n{rows}\n"
            f'<tr class="grand"><td></td><td>本单冲减合计</td><td></td><td class="num">{_yuan(-note.totals.net)}</td>'
            f'<td class="num">{_yuan(-note.totals.vat)}</td><td class="num">{_yuan(-note.totals.gross)}</td></tr>'
            "</tbody></table></div>")
    refund = settlement.outstanding < 0
    balance = (f'<tr class="grand"><td>{"应退金额" if refund else "应付余额（未收）"}</td>'
               f'<td class="num">¥{_yuan(abs(settlement.outstanding))}</td></tr>')
    parts.append(
        '<table class="totals balance">'
        "<thead><tr><th>结算</th><th>金额</th></tr></thead><tbody>"
        f'<tr><td>价税合计（开具时）</td><td class="num">{_yuan(gross)}</td></tr>'
        f'<tr><td>减：红字冲销</td><td class="num">{_yuan(settlement.credited)}</td></tr>'
        f'<tr><td>减：已收款</td><td class="num">{_yuan(settlement.paid)}</td></tr>'
        f"{balance}"
        "</tbody></table>")
    return f'<section class="credits" data-testid="settlement">\n{"".join(parts)}\n</section>'


def invoice_html(invoice: InvoiceView, settlement: Settlement | None = None) -> str:
    """The statement of charges (结算单) as a self-contained printable A4 page: inline CSS, no
    external assets, all content escaped. With `settlement`, the credit notes and the
    balance follow the totals as issued."""
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
<title>结算单 {e(invoice.number)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>结算单</h1>
<dl class="head">
<dt>结算单号</dt><dd>{e(invoice.number)}</dd>
<dt>开具日期</dt><dd>{invoice.issued_on.isoformat()}</dd>
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
{_credits_html(settlement, grand.gross) if settlement is not None else ""}
<p class="note">金额单位：人民币元。每行注明计费依据（协议条款）及来源事件。</p>
<p class="note">本结算单列明按服务协议由贵方承担的费用，不是增值税发票；发票由税务系统另行开具。</p>
</body>
</html>
"""
