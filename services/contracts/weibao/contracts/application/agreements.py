"""Agreement commands and queries: load, decide, append.

Each command appends the domain's private events together with their public
translations (shared/public/contracts.py) in one append: the relay publishes both, so
the log is the only place anything is written and nothing is published that was not
committed. Command ids make retries harmless."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
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
from weibao.shared.errors import Rejected, require
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.fields import exact
from weibao.shared.public import contracts as public

PRIVATE = codec.Codec([
    domain.AgreementSigned, domain.FeePaid, domain.FeeFallenDue, domain.CoverageLapsed,
    domain.AgreementAmended, domain.AgreementTerminated, domain.ChangeRequestRecorded,
], prefix="private.")


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
            return [_granted(state, event.period_from, event.period_to, "paid", ("C2",))]
        case domain.FeeFallenDue():
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


def _granted(state: domain.Agreement, start: date, end: date, basis: str, clauses: tuple[str, ...]) -> Any:
    assert state.office is not None
    return public.CoverageGranted(
        state.agreement_id, state.customer_id, state.site_ids, start.isoformat(), end.isoformat(),
        basis,  # type: ignore[arg-type]
        clauses, _office(state.office), codec.dump(state.terms_on(start)),
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

    # -- commands from the outside world, as plain data ------------------------------

    async def sign(self, data: Mapping[str, Any], *, command_id: str | None = None,
                   meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        template_id = str(data.get("template_id", ""))
        require(template_id in self.templates, "unknown", "template_id",
                f"no template {template_id!r}; known: {', '.join(sorted(self.templates))}")
        terms: Terms = self.templates[template_id].resolve(data.get("parameters") or {})
        office = codec.parse(domain.Office, data.get("office"), field="office")
        command = domain.SignAgreement(
            agreement_id=_text(data, "agreement_id"), customer_id=_text(data, "customer_id"),
            template_id=template_id, terms=terms, go_live=_date(data, "go_live"),
            signed_on=_date(data, "signed_on", self.today()), office=office,
            site_ids=tuple(str(s) for s in data.get("site_ids") or ()),
        )
        return await self.execute(command.agreement_id, command, command_id=command_id, meta=meta)

    async def pay(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        command = domain.RecordFeePayment(
            payment_id=_text(data, "payment_id"), amount=_amount(data, "amount"),
            period_from=_date(data, "period_from"), period_to=_date(data, "period_to"),
            paid_on=_date(data, "paid_on", self.today()),
        )
        return await self.execute(_text(data, "agreement_id"), command, **kw)

    async def assess(self, agreement_id: str, today: date | None = None, **kw: Any) -> list[RecordedEvent]:
        return await self.execute(agreement_id, domain.AssessCoverage(today or self.today()), **kw)

    async def amend(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        state, _ = await self.load(_text(data, "agreement_id"))
        require(state.status != "none", "not_found", "agreement_id", "no such agreement")
        terms = self.templates[state.template_id].resolve(data.get("parameters") or {})
        command = domain.AmendAgreement(terms, _date(data, "effective_on"), str(data.get("reason", "")))
        return await self.execute(state.agreement_id, command, **kw)

    async def terminate(self, data: Mapping[str, Any], **kw: Any) -> list[RecordedEvent]:
        command = domain.TerminateAgreement(_date(data, "on", self.today()), str(data.get("reason", "")))
        return await self.execute(_text(data, "agreement_id"), command, **kw)

    async def change_request(self, data: Mapping[str, Any], *, command_id: str | None = None,
                             meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """rule C8: record a change request; coverage decides covered or billable (B6)."""
        command = changes.RecordChangeRequest(
            ref=_text(data, "ref"), description=_text(data, "description"),
            on=_date(data, "on", self.today()), workload_days=_workload(data, "workload_days"),
        )
        return await self.repository.execute(stream_of(_text(data, "agreement_id")),
                                             lambda state: changes.decide(command, state),
                                             command_id=command_id, meta=meta)

    async def coverage(self, data: Mapping[str, Any]) -> Decision:
        if data.get("serial"):
            # Vendor-supplied hardware: its warranty answers, not the maintenance period.
            return from_warranty(await Warranties(self.store).verdict(data))
        state, _ = await self.load(_text(data, "agreement_id"))
        require(state.status != "none", "not_found", "agreement_id", "no such agreement")
        fields = {k: v for k, v in data.items() if k not in ("agreement_id", "site_id")}
        fields.setdefault("on", self.today().isoformat())
        if data.get("site_id") and "local" not in data:
            fields["local"] = await self._is_local(state, str(data["site_id"]))
        return decide_coverage(state, codec.parse(Question, fields))

    async def _is_local(self, state: domain.Agreement, site_id: str) -> bool:
        """rule C9 / D1: the site is in the servicing office's city, or within its radius."""
        customer = await Customers(self.store).load(state.customer_id)
        site = customer.site(site_id)
        require(site is not None, "not_found", "site_id", "the agreement's customer has no such site")
        assert site is not None
        assert state.office is not None
        assert state.terms is not None
        return geo.is_local(site.location, state.office, radius_km=state.terms.onsite.local_radius_km)


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    require(isinstance(value, str) and bool(value.strip()), "missing", name, "a non-empty text is required")
    return str(value)


def _date(data: Mapping[str, Any], name: str, default: date | None = None) -> date:
    value = data.get(name)
    if value is None and default is not None:
        return default
    try:
        return date.fromisoformat(str(value))
    except ValueError as error:
        raise Rejected("invalid", name, "a date as YYYY-MM-DD is required") from error


def _amount(data: Mapping[str, Any], name: str) -> Decimal:
    amount = exact(data, name, "an amount of yuan", "12000.00")
    require(amount > 0, "invalid", name, "must be a positive amount")
    return amount


def _workload(data: Mapping[str, Any], name: str) -> Decimal:
    """rule C8: working days of workload, exact."""
    days = exact(data, name, "working days of workload", "4.5")
    require(days > 0, "invalid", name, "working days of workload, more than 0")
    return days
