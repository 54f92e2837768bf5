"""What contracts tells billing about the annual fee (issue 13 item 7; rules C2, B4): a fee
falling due is published as `FeeDue` (billing keeps a renewal notice of it), and the
renewal, a fee payment, as the `CoverageGranted` of the period it pays, naming the
payment (id, amount, day): what billing drafts the annual fee from. No second message
for the same fact: the grant already says the period is paid, it now says by which
payment. A grant recorded before (no payment named) still decodes, as schema 1."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import date
from decimal import Decimal

from weibao.contracts.adapters.templates import TemplateFile
from weibao.contracts.application.agreements import translate
from weibao.contracts.domain.agreement import AssessCoverage, FeeFallenDue, FeePaid, RecordFeePayment
from weibao.shared import codec
from weibao.shared.public import contracts as public

from .conftest import AGREEMENT, YIZHUO_PARAMETERS, signing


def test_c2_b4_a_payment_is_published_as_the_paid_grant_naming_the_payment(
        templates: dict[str, TemplateFile]) -> None:
    paying = AGREEMENT.after(signing(templates["yizhuo-crm-maintenance"], **YIZHUO_PARAMETERS)).when(
        RecordFeePayment("fee-2026", Decimal("12000"), date(2026, 3, 1), date(2027, 2, 28), date(2026, 2, 20)))
    (event,) = paying.events
    assert isinstance(event, FeePaid)
    (granted,) = translate(event, paying.state)  # as contracts publishes it: with the state after the payment
    assert isinstance(granted, public.CoverageGranted)
    assert (granted.basis, granted.period_from, granted.period_to) == ("paid", "2026-03-01", "2027-02-28")
    assert (granted.payment_id, granted.amount, granted.paid_on) == ("fee-2026", "12000.00", "2026-02-20")
    assert granted.clauses == ("C2",)
    assert public.CODEC.versions["CoverageGranted"] == 1  # fields added with defaults: not a breaking change


def test_b4_a_fee_falling_due_is_published_as_fee_due_and_the_free_year_names_no_payment(
        templates: dict[str, TemplateFile]) -> None:
    history = AGREEMENT.after(signing(templates["yizhuo-crm-maintenance"], **YIZHUO_PARAMETERS))
    due = [e for e in history.when(AssessCoverage(date(2026, 1, 30))).events if isinstance(e, FeeFallenDue)]
    (fee,) = translate(due[0], history.given(due[0]).state)  # the signed agreement with this fee due
    assert isinstance(fee, public.FeeDue)
    assert (fee.period_from, fee.period_to, fee.amount, fee.due_on) == ("2026-03-01", "2027-02-28", "12000.00",
                                                                        "2026-01-30")
    assert fee.clauses == ("C2", "B4")


def test_a_grant_recorded_before_the_payment_fields_still_decodes() -> None:
    granted = public.CoverageGranted("a-1", "c-1", ("s-1",), "2026-03-01", "2027-02-28", "paid", ("C2",),
                                     public.Office("合肥", "3401", 31.8, 117.2), {})
    old = json.loads(json.dumps(asdict(granted)))
    for name in ("payment_id", "amount", "paid_on"):
        del old[name]  # as a log written before issue 13 holds it
    assert codec.load(public.CoverageGranted, old) == granted
    newer = replace(granted, payment_id="fee-2026", amount="12000.00", paid_on="2026-02-20")
    assert codec.load(public.CoverageGranted, json.loads(json.dumps(asdict(newer)))) == newer
