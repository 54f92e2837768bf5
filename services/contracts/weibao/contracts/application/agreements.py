"""Agreement commands and queries: load, decide, append.

Each command appends the domain's private events together with their public
translations (shared/public/contracts.py) in one append: the relay publishes both, so
the log is the only place anything is written and nothing is published that was not
committed. Command ids make retries harmless."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from weibao.contracts.adapters.templates import TemplateFile
from weibao.contracts.application.customers import Customers
from weibao.contracts.application.published import PUBLIC
from weibao.contracts.application.warranties import Warranties
from weibao.contracts.domain import agreement as domain
from weibao.contracts.domain import changes
from weibao.contracts.domain.coverage import Decision, Question, decide_coverage, from_warranty
from weibao.contracts.domain.terms import Terms
from weibao.shared import codec, geo
from weibao.shared.aggregates import Repository
from weibao.shared.commands import contracts as commands
from weibao.shared.errors import require
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.public import contracts as public

PRIVATE = domain.EVENTS
QUESTION_FIELDS = tuple(f.name for f in fields(Question))  # what a coverage question tells the domain


def stream_of(agreement_id: str) -> str:
    return f"agreement-{agreement_id}"


def _office(office: domain.Office) -> public.Office:
    return public.Office(office.name, office.city_code, office.latitude, office.longitude)


def translate(event: domain.Event, state: domain.Agreement) -> list[Any]:
    """The public messages a domain event makes true; `state` is after the event."""
    match event:
        case domain.AgreementSigned():
            return [
                public.AgreementSigned(event.agreement_id, event.customer_id, event.template_id,
                                       event.go_live.isoformat(), event.site_ids, _office(event.office)),
                _granted(state, event.go_live, event.free_until, "free", ("C1",)),
            ]
        case domain.FeePaid():
            # rules C2, B4: the renewal: billing drafts the annual fee from the payment it names
            return [_granted(state, event.period_from, event.period_to, "paid", ("C2",), paid=event)]
        case domain.FeeFallenDue():
            # rule B4: a renewal notice for billing's clerk, not an invoice line
            return [public.FeeDue(state.agreement_id, state.customer_id, event.period_from.isoformat(),
                                  event.period_to.isoformat(), str(event.amount), event.due_on.isoformat())]
        case domain.CoverageLapsed():
            return [public.CoverageLapsed(state.agreement_id, state.customer_id, event.lapsed_on.isoformat())]
        case domain.AgreementAmended():
            return [public.CoverageChanged(state.agreement_id, state.customer_id, event.effective_on.isoformat(),
                                           event.reason, codec.dump(event.terms))]
        case domain.AgreementTerminated():
            return [public.CoverageEnded(state.agreement_id, state.customer_id, event.on.isoformat(), event.reason)]
        case domain.ChangeRequestRecorded():
            # rules C8, B6: billing prices a billable change by its workload
            return [public.ChangeRequestAssessed(state.agreement_id, state.customer_id, event.ref, event.description,
                                                 event.on.isoformat(), str(event.workload_days), event.verdict,
                                                 event.clauses)]
    raise AssertionError(event)


def _granted(state: domain.Agreement, start: date, end: date, basis: str, clauses: tuple[str, ...], *,
             paid: domain.FeePaid | None = None) -> Any:
    assert state.office is not None
    return public.CoverageGranted(
        state.agreement_id, state.customer_id, state.site_ids, start.isoformat(), end.isoformat(),
        basis,  # type: ignore[arg-type]
        clauses, _office(state.office), codec.dump(state.terms_on(start)),
        payment_id=paid.payment_id if paid else None, amount=str(paid.amount) if paid else None,
        paid_on=paid.paid_on.isoformat() if paid else None,
    )


def repository(store: EventStore) -> Repository[domain.Agreement, domain.Event]:
    return Repository(store, PRIVATE, domain.evolve, domain.Agreement(), PUBLIC, translate)


@dataclass
class Agreements:
    store: EventStore
    templates: Mapping[str, TemplateFile]
    today: Callable[[], date]

    @property
    def repository(self) -> Repository[domain.Agreement, domain.Event]:
        return repository(self.store)

    async def load(self, agreement_id: str, *, as_of: Any = None) -> tuple[domain.Agreement, int]:
        return await self.repository.load(stream_of(agreement_id), as_of=as_of)

    async def execute(self, agreement_id: str, command: domain.Command, *, command_id: str | None,
                      meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        return await self.repository.execute(stream_of(agreement_id), lambda state: domain.decide(command, state),
                                             command_id=command_id, meta=meta)

    # -- commands from the outside world, decoded by their schemas ------------------
    # The schemas (weibao.shared.commands.contracts) checked the shape: ids, dates within
    # the years, exact amounts. What is left here is meaning: the template exists, its
    # parameters are valid per the domain (C2, C9...), the agreement exists.

    async def sign(self, request: commands.Signature, *, command_id: str | None = None,
                   meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        require(request.template_id in self.templates, "unknown", "template_id",
                f"no template {request.template_id!r}; known: {', '.join(sorted(self.templates))}")
        terms: Terms = self.templates[request.template_id].resolve(request.parameters)
        office = request.office
        command = domain.SignAgreement(
            agreement_id=request.agreement_id, customer_id=request.customer_id, template_id=request.template_id,
            terms=terms, go_live=request.go_live, signed_on=request.signed_on or self.today(),
            office=domain.Office(office.name, office.city_code, office.latitude, office.longitude),
            site_ids=tuple(request.site_ids),
        )
        return await self.execute(command.agreement_id, command, command_id=command_id, meta=meta)

    async def pay(self, request: commands.PayFee, **kw: Any) -> list[RecordedEvent]:
        command = domain.RecordFeePayment(
            payment_id=request.payment_id, amount=request.amount, period_from=request.period_from,
            period_to=request.period_to, paid_on=request.paid_on or self.today(),
        )
        return await self.execute(request.agreement_id, command, **kw)

    async def assess(self, agreement_id: str, today: date | None = None, **kw: Any) -> list[RecordedEvent]:
        return await self.execute(agreement_id, domain.AssessCoverage(today or self.today()), **kw)

    async def amend(self, request: commands.AmendAgreement, **kw: Any) -> list[RecordedEvent]:
        state, _ = await self.load(request.agreement_id)
        require(state.status != "none", "not_found", "agreement_id", "no such agreement", reason="agreement.not_found")
        terms = self.templates[state.template_id].resolve(request.parameters)
        command = domain.AmendAgreement(terms, request.effective_on, request.reason)
        return await self.execute(state.agreement_id, command, **kw)

    async def terminate(self, request: commands.TerminateAgreement, **kw: Any) -> list[RecordedEvent]:
        command = domain.TerminateAgreement(request.on or self.today(), request.reason)
        return await self.execute(request.agreement_id, command, **kw)

    async def change_request(self, request: commands.RecordChangeRequest, *, command_id: str | None = None,
                             meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """rule C8: record a change request; coverage decides covered or billable (B6)."""
        command = changes.RecordChangeRequest(ref=request.ref, description=request.description,
                                              on=request.on or self.today(), workload_days=request.workload_days)
        return await self.repository.execute(stream_of(request.agreement_id),
                                             lambda state: changes.decide(command, state),
                                             command_id=command_id, meta=meta)

    async def coverage(self, question: commands.CoverageQuestion) -> Decision:
        if question.serial:
            # Vendor-supplied hardware: its warranty answers, not the maintenance period.
            asked = question.model_dump(include={"serial", "fault_on", "fault", "cause", "part"}, exclude_none=True)
            return from_warranty(await Warranties(self.store).verdict(codec.parse(commands.WarrantyQuestion, asked)))
        require(bool(question.agreement_id), "missing", "agreement_id", "a non-empty text is required")
        state, _ = await self.load(str(question.agreement_id))
        require(state.status != "none", "not_found", "agreement_id", "no such agreement", reason="agreement.not_found")
        local = question.local
        if local is None:
            # rule C9: an answer about a site says whether it is local; without one, local
            local = await self._is_local(state, question.site_id) if question.site_id else True
        # The domain's vocabulary (services, phases) decides what a question may ask.
        asked = question.model_dump(include=set(QUESTION_FIELDS), exclude_none=True)
        return decide_coverage(state, codec.parse(Question, {**asked, "on": question.on or self.today(),
                                                             "local": local}))

    async def _is_local(self, state: domain.Agreement, site_id: str) -> bool:
        """rule C9 / D1: the site is in the servicing office's city, or within its radius."""
        customer = await Customers(self.store).load(state.customer_id)
        site = customer.site(site_id)
        require(site is not None, "not_found", "site_id", "the agreement's customer has no such site",
                reason="agreement.site_not_of_customer")
        assert site is not None
        assert state.office is not None
        assert state.terms is not None
        return geo.is_local(site.location, state.office, radius_km=state.terms.onsite.local_radius_km)

