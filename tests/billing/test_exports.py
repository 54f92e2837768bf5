"""Billing exports: the published rows (shared.public.billing), the files the gateway
makes of them (CSV with a BOM, JSON and XLSX with stable columns, filters, streaming) and
the A4 invoice page. Money is exact yuan and fen, never a float (rule B8)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import load_workbook

from weibao.billing.adapters.exports import InvoiceView, VatTotal, invoice_html, vat_totals
from weibao.gateway.export_files import BOM, csv_stream, filter_lines, json_stream, xlsx_file
from weibao.shared.public.billing import COLUMNS, ExportLine, line_of, row_of


def line(**changes: object) -> ExportLine:
    base = ExportLine(
        invoice_number="WB-2025-0001",
        invoice_id="inv-1",
        status="issued",
        issued_on=date(2025, 3, 5),
        customer_id="cust-1",
        customer_name="易卓软件（北京）有限公司",
        period="2025-02",
        line_no=1,
        item_id="item-1",
        kind="hardware_day",
        description="硬件维护 2 天（不足一天按一天计）",
        quantity=Decimal("2"),
        unit="天",
        unit_price=Decimal("61.70"),
        net=Decimal("123.40"),
        vat_rate=Decimal("0.13"),
        vat=Decimal("16.04"),
        gross=Decimal("139.44"),
        clauses=("B2", "C4"),
        sources=("dispatch:12", "dispatch:13"),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


TRAVEL = line(
    line_no=2,
    item_id="item-2",
    kind="travel",
    description='差旅费, "高铁" 往返\n北京—天津',
    quantity=Decimal("1"),
    unit="次",
    unit_price=Decimal("109.00"),
    net=Decimal("109.00"),
    vat_rate=Decimal("0.09"),
    vat=Decimal("9.81"),
    gross=Decimal("118.81"),
    clauses=("B1", "C5"),
    sources=("dispatch:14",),
)
OTHER_CUSTOMER = line(
    invoice_number="WB-2025-0002",
    invoice_id="inv-2",
    customer_id="cust-2",
    customer_name="全搜索科技",
    period="2025-03",
)


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def agen(*lines: ExportLine) -> AsyncIterator[ExportLine]:
    for item in lines:
        yield item


# --- rows -------------------------------------------------------------------------------


def test_money_must_be_exact_fen_decimals() -> None:  # rule B8
    with pytest.raises(TypeError):
        line(net=123.4)
    with pytest.raises(ValueError, match="fen"):
        line(net=Decimal("123.401"))
    with pytest.raises(ValueError, match="gross"):
        line(gross=Decimal("139.45"))
    with pytest.raises(ValueError, match="period"):
        line(period="2025-13")
    with pytest.raises(ValueError, match=";"):
        line(sources=("dispatch:1;dispatch:2",))


# --- CSV --------------------------------------------------------------------------------


async def test_csv_has_bom_header_and_round_trips_chinese_and_quoting() -> None:
    data = await collect(csv_stream([line(), TRAVEL]))

    assert data.startswith(BOM + b"invoice_number,invoice_id,")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 3
    first = dict(zip(COLUMNS, rows[1], strict=True))
    assert first["customer_name"] == "易卓软件（北京）有限公司"
    assert first["description"] == "硬件维护 2 天（不足一天按一天计）"
    assert first["issued_on"] == "2025-03-05"
    assert (first["quantity"], first["unit_price"], first["net"]) == ("2", "61.70", "123.40")
    assert (first["vat_rate"], first["vat"], first["gross"]) == ("0.13", "16.04", "139.44")
    assert first["clauses"] == "B2;C4"
    assert first["sources"] == "dispatch:12;dispatch:13"
    assert rows[2][COLUMNS.index("description")] == '差旅费, "高铁" 往返\n北京—天津'


async def test_csv_accepts_async_sources_and_defuses_formulas_in_text_only() -> None:
    credit = line(
        status="credit_note",
        description='=HYPERLINK("http://x")',
        net=Decimal("-123.40"),
        unit_price=Decimal("-61.70"),
        vat=Decimal("-16.04"),
        gross=Decimal("-139.44"),
    )
    data = await collect(csv_stream(agen(credit)))

    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    row = dict(zip(COLUMNS, rows[1], strict=True))
    assert row["description"] == '\'=HYPERLINK("http://x")'
    assert row["net"] == "-123.40"  # numbers are never prefixed


async def test_csv_of_nothing_is_the_header() -> None:
    data = await collect(csv_stream([]))
    assert data == BOM + ",".join(COLUMNS).encode() + b"\r\n"


async def test_a_prorated_unit_price_finer_than_a_fen_is_shown_not_rounded() -> None:
    fee = line(
        kind="annual_fee",
        quantity=Decimal("3"),
        unit="月",
        unit_price=Decimal("333.333"),
        net=Decimal("1000.00"),
        vat_rate=Decimal("0.06"),
        vat=Decimal("60.00"),
        gross=Decimal("1060.00"),
    )
    rows = list(csv.reader(io.StringIO((await collect(csv_stream([fee]))).decode("utf-8-sig"), newline="")))
    assert rows[1][COLUMNS.index("unit_price")] == "333.333"
    assert rows[1][COLUMNS.index("vat_rate")] == "0.06"
    assert "333.333" in invoice_html(InvoiceView.of([fee]))


# --- JSON -------------------------------------------------------------------------------


async def test_json_is_one_valid_array_with_money_as_strings() -> None:
    data = await collect(json_stream(agen(line(), TRAVEL)))

    rows = json.loads(data.decode("utf-8"))
    assert [list(row) for row in rows] == [list(COLUMNS)] * 2
    assert rows[0]["net"] == "123.40"
    assert rows[0]["unit_price"] == "61.70"
    assert rows[0]["line_no"] == 1
    assert rows[0]["customer_name"] == "易卓软件（北京）有限公司"
    assert "易卓".encode() in data  # UTF-8, not \\u escapes
    assert rows[1]["description"] == '差旅费, "高铁" 往返\n北京—天津'
    assert json.loads(await collect(json_stream([]))) == []


async def test_a_row_of_export_lines_reads_back_as_the_same_line() -> None:
    """What `weibao.billing.export.lines` answers (row_of) is what the gateway formats (line_of)."""
    credit = line(status="credit_note", quantity=Decimal("-2"), net=Decimal("-123.40"), vat=Decimal("-16.04"),
                  gross=Decimal("-139.44"), credit_id="inv-1-CN1", clauses=())
    for original in (line(), TRAVEL, credit):
        row = json.loads(json.dumps(row_of(original), ensure_ascii=False))  # over the wire
        assert list(row) == list(COLUMNS)
        assert line_of(row) == original
    assert line_of({**row_of(line()), "a_later_column": "x"}) == line()  # readers ignore new fields
    with pytest.raises(ValueError, match="net"):
        line_of({**row_of(line()), "net": "12.3x"})
    with pytest.raises(ValueError, match="line_no"):
        line_of({**row_of(line()), "line_no": "1"})


# --- XLSX -------------------------------------------------------------------------------


async def test_xlsx_has_header_rows_chinese_and_numeric_money(tmp_path: Path) -> None:
    path = tmp_path / "invoices.xlsx"
    formula = line(line_no=3, description="=1+1")
    assert await xlsx_file([line(), TRAVEL, formula], path) == 3

    sheet = load_workbook(path).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == COLUMNS
    assert len(rows) == 4
    first = dict(zip(COLUMNS, rows[1], strict=True))
    assert first["customer_name"] == "易卓软件（北京）有限公司"
    assert first["net"] == pytest.approx(123.4)
    assert isinstance(first["gross"], float)
    assert first["clauses"] == "B2;C4"
    net_cell = sheet.cell(row=2, column=COLUMNS.index("net") + 1)
    assert net_cell.data_type == "n" and net_cell.number_format == "0.00"
    assert rows[2][COLUMNS.index("description")] == '差旅费, "高铁" 往返\n北京—天津'
    formula_cell = sheet.cell(row=4, column=COLUMNS.index("description") + 1)
    assert formula_cell.value == "=1+1" and formula_cell.data_type == "s"  # text, not a formula
    assert sheet.column_dimensions["K"].width == 44  # description


async def test_xlsx_writes_to_a_file_object() -> None:
    out = io.BytesIO()
    await xlsx_file(agen(line()), out)
    rows = list(load_workbook(io.BytesIO(out.getvalue())).worksheets[0].iter_rows(values_only=True))
    assert rows[1][COLUMNS.index("invoice_number")] == "WB-2025-0001"


# --- filters ----------------------------------------------------------------------------


async def test_filters_by_period_and_customer() -> None:
    lines = [line(), TRAVEL, OTHER_CUSTOMER]

    async def numbers(**kwargs: str | None) -> list[tuple[str, int]]:
        return [(x.customer_id, x.line_no) async for x in filter_lines(lines, **kwargs)]

    assert await numbers() == [("cust-1", 1), ("cust-1", 2), ("cust-2", 1)]
    assert await numbers(period="2025-02") == [("cust-1", 1), ("cust-1", 2)]
    assert await numbers(period="2025") == [("cust-1", 1), ("cust-1", 2), ("cust-2", 1)]
    assert await numbers(customer_id="cust-2") == [("cust-2", 1)]
    assert await numbers(period="2025-02", customer_id="cust-2") == []
    data = await collect(csv_stream(filter_lines(agen(*lines), customer_id="cust-2")))
    assert data.decode("utf-8-sig").count("\r\n") == 2
    with pytest.raises(ValueError, match="period"):
        await numbers(period="2025-2")


# --- invoice page -----------------------------------------------------------------------


def test_invoice_html_is_a_printable_escaped_a4_page() -> None:
    hostile = line(line_no=3, description="<script>alert(1)</script> & 更多")
    view = InvoiceView.of([line(), TRAVEL, hostile])

    page = invoice_html(view)

    assert "@page" in page and "A4" in page and "15mm" in page
    assert "WB-2025-0001" in page
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 更多" in page
    # Not the tax invoice (发票 comes from the tax system): a statement of charges, and it says so.
    assert "<title>结算单 WB-2025-0001</title>" in page and "<h1>结算单</h1>" in page
    assert "不是增值税发票" in page
    for heading in ("结算单号", "客户", "开具日期", "数量", "单价", "金额", "税率", "税额", "合计"):
        assert heading in page
    assert "易卓软件（北京）有限公司" in page
    assert "B2 · C4" in page and "dispatch:12; dispatch:13" in page
    assert "http" not in page.replace('lang="zh-CN"', "")  # no external assets
    # totals by rate, highest first, then 合计
    assert view.totals == (
        VatTotal(Decimal("0.13"), Decimal("246.80"), Decimal("32.08"), Decimal("278.88")),
        VatTotal(Decimal("0.09"), Decimal("109.00"), Decimal("9.81"), Decimal("118.81")),
    )
    assert view.total.gross == Decimal("397.69")
    assert "税率 13%" in page and "税率 9%" in page and "¥397.69" in page


def test_invoice_view_refuses_inconsistent_totals_or_foreign_lines() -> None:
    with pytest.raises(ValueError, match="totals"):
        InvoiceView("WB-2025-0001", date(2025, 3, 5), "cust-1", "易卓", "2025-02", [line()], ())
    with pytest.raises(ValueError, match="belongs"):
        InvoiceView.of([line(), OTHER_CUSTOMER])
    assert vat_totals([]) == ()


# --- streaming --------------------------------------------------------------------------


async def test_csv_streams_100000_lines_in_bounded_chunks() -> None:
    produced = 0
    total = 100_000

    def generate() -> Iterator[ExportLine]:
        nonlocal produced
        template = line()
        for n in range(1, total + 1):
            produced += 1
            yield replace(template, line_no=n, item_id=f"item-{n}")

    stream = csv_stream(generate())
    first = await anext(stream)
    assert first.startswith(BOM) and produced == 0  # the header comes before any row is read
    second = await anext(stream)
    assert produced < 2_000  # one chunk's worth of rows, not the whole source
    size, newlines, largest, last = len(first) + len(second), first.count(b"\n") + second.count(b"\n"), 0, b""
    async for chunk in stream:
        size += len(chunk)
        newlines += chunk.count(b"\n")
        largest = max(largest, len(chunk))
        last = chunk
    assert produced == total
    assert newlines == total + 1
    assert largest < 128 * 1024
    assert last.rstrip(b"\r\n").split(b"\r\n")[-1].split(b",")[7:9] == [b"100000", b"item-100000"]
    assert size > total * 150
