"""The billing policy: contracts' and dispatch's public messages in, invoice lines out.

A fee falling due is a renewal notice, not a line (rules B4, C2; adapters/renewals.py):
the annual fee is drafted when the customer renews, from the paid `CoverageGranted`
that names the payment, and the notice of that period becomes "renewed", in the same
transaction. Reading a log written before that change, the policy (a replay copy, or
the live one) records the fee lines the log holds from `FeeDue` (`_billed_before`): they
stay as billed.

A policy consumer per upstream decodes each message (`weibao.shared.public.read`),
prices it (domain/pricing) and adds the items to the customer's draft for the period,
in the same transaction as its checkpoint. Item ids derive from the message's position,
and every billed item id is kept with the invoice it went to (adapters/drafts): a
redelivered message, or the whole stream replayed from position 0, finds its items
billed and adds nothing, wherever they went. An item for an issued invoice goes on a
supplementary draft of the same period (B8).

Replaying a policy (`weibao replay billing policy_contracts`): a policy's effect is
events appended to billing's own log, and a replay must never append (the log is the
truth; a second copy of each line would be a forgery of history). So a replay copy
(`BillingPolicy.fresh`) rebuilds the policy's own tables into fresh ones: the terms book
as the contracts stream says, and `billing_items`, where each item the upstream message
prices to is written with the invoice the *log* holds its `LineAdded` on (`(not in the
log)` when none does: the live policy lost it). The comparison then asks: did the live
policy bill exactly the items the upstream implies, onto the invoices the log says? Each
policy is compared on the items of its own upstream (their ids begin `<upstream>:`); the
terms book only by the contracts policy, which alone feeds it. The day ledger of C4
(`billing_work_days`: which technician's days on which request are billed, and by which
item) is rebuilt by the replay from dispatch's stream alone, as the live policy wrote it,
and compared like the items, by the ids of their upstream. `billing_drafts` (which
draft is open now) is not compared: it records decisions taken against commands (an
issue opens a supplementary draft) that a stream replay does not see; the log's
`DraftOpened` events are its audit trail."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from weibao.billing.adapters.drafts import Drafts, billed_in_log, line_in_log
from weibao.billing.adapters.invoices import Invoices, invoice_stream
from weibao.billing.adapters.renewals import Renewals
from weibao.billing.adapters.terms import READS as BOOK_READS
from weibao.billing.adapters.terms import TermsBook
from weibao.billing.adapters.workdays import WorkDays
from weibao.billing.domain import invoice as domain
from weibao.billing.domain import pricing
from weibao.billing.domain.renewal import notice_of
from weibao.shared import public
from weibao.shared.clock import CHINA
from weibao.shared.consumer import NotYet
from weibao.shared.eventstore import EventStore
from weibao.shared.messages import Message
from weibao.shared.public import contracts, dispatch

CONFIG = Path(__file__).resolve().parent.parent / "config.toml"
NOT_IN_LOG = "(not in the log)"  # a replayed item no invoice of the log holds
# What the policy reads: what it prices, and what its terms book keeps.
READS = (contracts.FeeDue, contracts.CoverageLapsed, contracts.CoverageEnded, contracts.QuotaConsumed,
         contracts.WarrantyVerdict, contracts.ChangeRequestAssessed, dispatch.WorkLogged, dispatch.ExpenseRecorded,
         *BOOK_READS)
Row = tuple[Any, ...]


class TermsNotYetKnown(NotYet):
    """A visit's message names an agreement whose terms billing has not read yet: its
    contracts consumer is behind its dispatch consumer (a restart, a replay). Raised, not
    priced without terms (which would drop the visit's costs): the consumer retries for
    its patience (minutes, not five quick tries), and parks the message where an operator
    sees it only if the terms never come."""


class _Issued(Exception):
    """The draft an item was meant for has been issued meanwhile (B8: it stays as issued)."""


@dataclass(frozen=True)
class Config:
    """VAT rate of each line's kind, and the prices of what the agreements leave open."""

    vat: Mapping[str, Decimal]
    quota_prices: Mapping[str, Decimal]
    change_request_day_rate: Decimal | None

    @classmethod
    def load(cls, path: Path = CONFIG) -> Config:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        rate = data.get("change_request_day_rate")
        return cls({k: Decimal(str(v)) for k, v in data["vat"].items()},
                   {k: Decimal(str(v)) for k, v in data["quota_prices"].items()},
                   Decimal(str(rate)) if rate is not None else None)


@dataclass
class BillingPolicy:
    store: EventStore
    book: TermsBook
    config: Config
    today: Callable[[], date]
    invoices: Invoices
    # Set only on a replay copy (`fresh`): the live terms book, priced with when the copy's
    # own book has not the agreement (the dispatch policy's replay reads no terms).
    live_book: TermsBook | None = None

    def __post_init__(self) -> None:
        # In the terms book's metadata: the policy's tables are dropped and rebuilt together.
        self.drafts = Drafts(self.book.metadata, self.book.suffix)
        self.work_days = WorkDays(self.book.metadata, self.book.suffix)  # rule C4 per calendar day
        self.renewals = Renewals(self.book.metadata, self.book.suffix)  # rules B4, C2: notices, not lines
        self._in_log: dict[str, str] | None = None  # a replay copy's item id -> invoice, from the log

    def fresh(self, suffix: str) -> BillingPolicy:
        """A replay copy: its own tables (suffixed), reading the log, never appending."""
        return BillingPolicy(self.store, TermsBook(suffix), self.config, self.today, self.invoices,
                             live_book=self.book)

    @property
    def replaying(self) -> bool:
        return self.live_book is not None

    def tables(self) -> list[Any]:
        return [*self.book.tables(), *self.drafts.tables(), *self.work_days.tables(), *self.renewals.tables()]

    def replay_scope(self, upstream: str, rows: Mapping[str, list[Row]]) -> dict[str, list[Row]]:
        """What a replay of the `upstream` policy compares (module docstring): the items
        priced from that upstream's messages and the days they billed (C4); for contracts,
        the terms book and the renewal notices (B4), which only its messages write."""
        ours = f"{upstream}:"
        scoped = {"billing_items": [row for row in rows.get("billing_items", []) if str(row[0]).startswith(ours)],
                  "billing_work_days": [row for row in rows.get("billing_work_days", [])
                                        if str(row[-1]).startswith(ours)]}
        if upstream == "contracts":
            scoped |= {name: list(rows.get(name, []))
                       for name in ("billing_agreements", "billing_customers", "billing_renewals")}
        return scoped

    async def drafts_from_log(self, conn: AsyncConnection) -> None:
        """After a rebuild in place: the open drafts, which no stream replay restores."""
        await self.drafts.from_log(conn)

    async def handle(self, conn: AsyncConnection, message: Message) -> None:
        # Both policies (contracts, dispatch) may add to one draft: take the log's append
        # lock before reading it, so neither decides on a version the other is changing.
        if not self.replaying:  # a replay copy appends nothing
            await self.store.lock(conn)
        found = public.read(message, *READS)  # a misfit raises BadMessage: parked with its reason
        await self.book.apply(conn, found)  # terms and names first: a later message prices with them
        source = pricing.Source(message.service, message.position, message.type)
        match found:
            case contracts.FeeDue() as fee:
                # rules B4, C2: a renewal notice for the clerk, never a line (nobody agreed
                # to the period yet); the fee is billed when the customer pays it (below)
                notice = notice_of(fee, source)
                await self.renewals.due(conn, notice)
                old = pricing.item_id(source)  # the line the rule before issue 13 drafted from it
                if await self._billed_before(conn, old) is not None:
                    await self.renewals.drafted_before(conn, notice.agreement_id, notice.period_from, old)
            case contracts.CoverageGranted(basis="paid") as granted:
                # rules B4, C2: the customer renewed: the annual fee, once, named after the
                # payment's message; the notices of the period it covers are renewed
                await self._renewed(conn, granted, source)
            case contracts.CoverageLapsed() as lapse:  # rule C1: the notice stays open, lapsed
                await self.renewals.lapsed(conn, lapse.agreement_id, pricing.day(lapse.lapsed_on, "lapsed_on"))
            case contracts.CoverageEnded() as ended:  # terminated: what was not renewed is withdrawn
                await self.renewals.withdrawn(conn, ended.agreement_id, pricing.day(ended.on, "on"))
            case contracts.QuotaConsumed() as quota:  # rules B5, C7, C10
                await self._bill(conn, pricing.for_quota(quota, self.config.quota_prices, source))
            case contracts.WarrantyVerdict() as verdict:  # rules B7, C18
                await self._bill(conn, pricing.for_dongle(verdict, {}, source))
            case contracts.ChangeRequestAssessed() as change:
                # rules B6, C8: by workload at the agreement's day rate for service (B3); without
                # one, the vendor's configured rate, else a rate to be agreed
                terms = await self._terms(conn, change.agreement_id)
                rate = (terms.get("service") or {}).get("day_rate")
                day_rate = Decimal(str(rate)) if rate is not None else self.config.change_request_day_rate
                await self._bill(conn, pricing.for_change_request(change, terms, day_rate, source), terms)
            case dispatch.WorkLogged() as work:  # rules B2, B3, C4
                terms = await self._visit_terms(conn, work, message)
                await self._bill_work(conn, work, terms, source)
            case dispatch.ExpenseRecorded() as expense:  # rules B1, C5
                if not expense.receipt_date:
                    # rule B1: a receipt without its date (the phone left it blank) is billed in
                    # the month it was recorded, rather than parked and never billed.
                    expense = replace(expense, receipt_date=message.recorded_at.astimezone(CHINA).date().isoformat())
                terms = await self._visit_terms(conn, expense, message)
                await self._bill(conn, pricing.for_expense(expense, terms, source), terms,
                                 ticket_id=expense.ticket_id)
            case _:
                pass  # terms and names (the book took them), and what billing does not price

    async def _terms(self, conn: AsyncConnection, agreement_id: str | None) -> dict[str, Any]:
        terms = await self.book.terms(conn, agreement_id)
        if not terms and self.live_book is not None:
            terms = await self.live_book.terms(conn, agreement_id)
        return terms

    async def _visit_terms(self, conn: AsyncConnection, visit: dispatch.WorkLogged | dispatch.ExpenseRecorded,
                           message: Message) -> dict[str, Any]:
        terms = await self._terms(conn, visit.agreement_id)
        if not terms and visit.agreement_id is not None:
            raise TermsNotYetKnown(f"no terms yet for agreement {visit.agreement_id!r} ({message.type} at "
                                   f"{message.service}:{message.position})")
        return terms

    async def _bill_work(self, conn: AsyncConnection, work: dispatch.WorkLogged, terms: Mapping[str, Any],
                         source: pricing.Source) -> None:
        """rule C4 per calendar day: price the record against the days this technician is
        already billed for on this request, and record the days it bills, with its line,
        in this transaction: a redelivery or a replay finds them and bills nothing more (B8)."""
        already = await self.work_days.billed(conn, work.technician_id, work.ticket_id,
                                              pricing.work_days(work, terms))
        items = pricing.for_work(work, terms, source, already)
        await self._bill(conn, items, terms, ticket_id=work.ticket_id)
        for item in items:
            await self.work_days.bill(conn, work.technician_id, work.ticket_id, item.days, item.item_id)

    async def _bill(self, conn: AsyncConnection, items: list[pricing.BillableItem],
                    terms: Mapping[str, Any] | None = None, *, ticket_id: str | None = None) -> None:
        for item in items:
            await self.add(conn, item, terms or {}, ticket_id=ticket_id)

    async def add(self, conn: AsyncConnection, item: pricing.BillableItem, terms: Mapping[str, Any], *,
                  ticket_id: str | None) -> None:
        """Put the item on its draft, once: an item id already billed (on any invoice,
        issued or not, even removed since) adds nothing (B8: never billed twice)."""
        if await self.drafts.billed(conn, item.item_id) is not None:
            return
        if self.replaying:
            await self.drafts.bill(conn, item.item_id, await self._billed_in_log(conn, item.item_id))
            return
        per_visit = terms.get("billing_period") == "per_visit" and ticket_id
        period = f"visit:{ticket_id}" if per_visit else item.occurred_on.strftime("%Y-%m")
        line = domain.Line(
            item.item_id, item.kind, item.description, item.quantity, item.unit, item.unit_price, item.amount,
            self.config.vat.get(item.kind, self.config.vat["default"]), item.clauses,
            tuple((s.service, s.position, s.message_type) for s in item.sources),
        )
        opened_on = self.today()
        for _attempt in range(2):
            invoice_id = await self.drafts.open(conn, item.customer_id, period)

            def decide(state: domain.Invoice, invoice_id: str = invoice_id) -> list[domain.Event]:
                if state.status not in ("none", "draft") and line.item_id not in state.item_ids:
                    raise _Issued
                events: list[domain.Event] = []
                if state.status == "none":
                    events = domain.decide(domain.OpenDraft(invoice_id, item.customer_id, period, opened_on), state)
                    for event in events:
                        state = domain.evolve(state, event)
                return events + domain.decide(domain.AddLine(line), state)

            try:
                await self.invoices.execute(invoice_stream(invoice_id), decide, conn=conn)
            except _Issued:
                await self.drafts.supplement(conn, item.customer_id, period)
                continue
            await self.drafts.bill(conn, item.item_id, invoice_id)
            return
        raise AssertionError("a fresh supplementary draft is always open")

    async def _renewed(self, conn: AsyncConnection, granted: contracts.CoverageGranted,
                       source: pricing.Source) -> None:
        """rules B4, C2: a payment bills its annual fee once and renews the open notices of
        the period it covers. A notice whose fee a log from before issue 13 drafted from
        its FeeDue is renewed without a second line (B8: never billed twice)."""
        paid_from = pricing.day(granted.period_from, "period_from")
        paid_to = pricing.day(granted.period_to, "period_to")
        notices = await self.renewals.renewable(conn, granted.agreement_id, paid_from, paid_to)
        drafted = any(item_id is not None for _, item_id in notices)
        items = [] if drafted else pricing.for_renewal(granted, source)
        await self._bill(conn, items)
        await self.renewals.renewed(
            conn, granted.agreement_id, [period_from for period_from, _ in notices], payment_id=granted.payment_id,
            paid_on=pricing.day(granted.paid_on, "paid_on") if granted.paid_on else None,
            item_id=items[0].item_id if items else None, source=f"{source.service}:{source.position}")

    async def _billed_before(self, conn: AsyncConnection, item_id: str) -> str | None:
        """A `FeeDue` of a log written before issue 13, when the policy drafted the annual
        fee from it (the old rule): the invoice the log holds that line on, else None.
        That line stays as billed (B8: issued lines never change; a draft's the clerk may
        remove), and its item is recorded, as the policy did then: by a replay copy (and
        the rebuild in place on upgrade), and by the live policy too, which applies the
        stream from position 0 when that rebuild could not (its upstream's SigningStarted
        not yet on the stream). A FeeDue of a newer log finds no line and records nothing."""
        if (billed := await self.drafts.billed(conn, item_id)) is not None:
            return billed
        if self.replaying:
            found = await self._billed_in_log(conn, item_id)
            invoice_id = None if found == NOT_IN_LOG else found
        else:
            invoice_id = await line_in_log(conn, item_id)
        if invoice_id is not None:
            await self.drafts.bill(conn, item_id, invoice_id)
        return invoice_id

    async def _billed_in_log(self, conn: AsyncConnection, item_id: str) -> str:
        """The invoice whose `LineAdded` holds `item_id` in the log (read once per replay)."""
        if self._in_log is None:
            self._in_log = await billed_in_log(conn)
        return self._in_log.get(item_id, NOT_IN_LOG)
