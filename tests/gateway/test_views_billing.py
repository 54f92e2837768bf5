"""The answers the gateway declares for billing and the audit (weibao.shared.views.billing,
.audit; the export's rows in weibao.gateway.schemas) read what those services really
build: their domain values as the codec writes them, their published export rows, the
kit's history. The API tests check the same through the routes; these name the model
at fault when a service's value grows a field the view has not declared."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import get_args

from weibao.billing.domain import invoice as domain
from weibao.gateway.schemas import ExportRow
from weibao.shared import codec
from weibao.shared.events import RecordedEvent
from weibao.shared.public.billing import COLUMNS, ExportLine, row_of
from weibao.shared.rpc import history_reply
from weibao.shared.views.audit import History
from weibao.shared.views.billing import Invoice, InvoiceAction, Totals


def _line(item_id: str = "dispatch:12:1") -> domain.Line:
    return domain.Line(item_id=item_id, kind="expense", description="停车费, \"收据\"", quantity=Decimal("1.5"),
                       unit="次", unit_price=Decimal("61.705"), amount=Decimal("92.56"), vat_rate=Decimal("0.13"),
                       clauses=("B2", "C4"), sources=(("dispatch", 12, "VisitClosed"),))


def test_an_invoices_actions_are_billings_state_table() -> None:
    assert set(get_args(InvoiceAction)) == set(get_args(domain.Action))


def test_the_invoice_view_reads_billings_invoice_as_the_codec_writes_it() -> None:
    # The fields weibao.billing's `invoice` query answers, from a draft's state.
    state = domain.Invoice(status="draft", invoice_id="C-1-2026-06", customer_id="C-1", period="2026-06",
                           opened_on=date(2026, 6, 1), lines=(_line(), _line("dispatch:13:1")))
    answer = codec.dump({"invoice_id": state.invoice_id, "customer_id": state.customer_id, "period": state.period,
                         "status": state.status, "number": state.number, "issued_on": state.issued_on,
                         "lines": state.lines, "totals": state.totals, "outstanding": state.outstanding,
                         "actions": sorted(domain.allowed(state))})
    view = Invoice.model_validate(answer)
    assert view.lines[0].sources == [("dispatch", 12, "VisitClosed")]
    assert view.model_dump(mode="json") == answer  # nothing changed on the way through
    assert Totals.model_validate(codec.dump(state.totals)).by_rate[0].rate == "0.13"


def test_every_export_column_is_in_the_json_exports_row_with_its_published_meaning() -> None:
    assert tuple(ExportRow.model_fields) == COLUMNS
    assert all(field.description for field in ExportRow.model_fields.values())
    line = ExportLine(invoice_number="INV-2026-000001", invoice_id="C-1-2026-06", status="credit_note",
                      issued_on=date(2026, 7, 2), customer_id="C-1", customer_name="甲方", period="2026-06",
                      line_no=1, item_id="dispatch:12:1", kind="expense", description="a, \"b\"\nc",
                      quantity=Decimal("-1.5"), unit="次", unit_price=Decimal("61.705"), net=Decimal("-92.56"),
                      vat_rate=Decimal("0.13"), vat=Decimal("-12.03"), gross=Decimal("-104.59"),
                      clauses=("B2",), sources=("dispatch:12",), credit_id="C-1-2026-06-CN1")
    row = row_of(line)
    assert ExportRow.model_validate(row).model_dump() == row


def test_an_aggregates_history_is_the_kits_history_reply() -> None:
    event = RecordedEvent(position=7, stream_id="invoice-C-1-2026-06", version=2, type="private.LineAdded",
                          schema_version=1, data={"line": codec.dump(_line())},
                          meta={"actor": "billing:wang", "correlation_id": "c-1", "command_id": None},
                          recorded_at=datetime(2026, 6, 30, 10, 0, tzinfo=UTC), prev_hash="0" * 64, hash="1" * 64)
    history = History.model_validate({"stream_id": event.stream_id, "as_of": None,
                                      "events": history_reply([event])})
    assert history.events[0].meta["actor"] == "billing:wang"
    assert history.events[0].recorded_at == event.recorded_at
