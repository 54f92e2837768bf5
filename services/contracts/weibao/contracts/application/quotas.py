"""Free quotas of an agreement (rules C7, C10): one ledger per agreement and kind.

A ledger opens itself on first use with the free units the agreement's terms grant, in
the same append as the first booking, so there is no window where it is missing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from weibao.contracts.application.agreements import Agreements
from weibao.contracts.application.published import PUBLIC
from weibao.contracts.domain import agreement as agreements_domain
from weibao.contracts.domain import quota as domain
from weibao.shared import codec
from weibao.shared.aggregates import Repository
from weibao.shared.commands import contracts as commands
from weibao.shared.errors import require
from weibao.shared.events import RecordedEvent
from weibao.shared.public import contracts as public

PRIVATE = codec.Codec(
    [domain.QuotaOpened, domain.QuotaReserved, domain.QuotaConsumed, domain.QuotaReleased, domain.QuotaExpired,
     domain.QuotaRenewed],
    prefix="private.",
)
KINDS: tuple[domain.QuotaKind, ...] = ("installation", "training_seat", "onsite_training_session")
ACTIONS: dict[str, type] = {"reserve": domain.Reserve, "consume": domain.Consume, "release": domain.Release,
                            "expire": domain.Expire}


def stream_of(agreement_id: str, kind: str) -> str:
    return f"quota-{agreement_id}-{kind}"


def opening(state: agreements_domain.Agreement, kind: domain.QuotaKind) -> domain.OpenQuota:
    """The free units the agreement grants (C7: seats and sessions; C10: installations)."""
    assert state.terms is not None
    assert state.go_live is not None
    terms = state.terms
    free = {"training_seat": terms.training.free_seats, "onsite_training_session": terms.training.free_sessions,
            "installation": terms.installation.free}[kind]
    policy = terms.installation.reinstall_policy if kind == "installation" else None
    return domain.OpenQuota(agreement_id=state.agreement_id, kind=kind, free=free, period_start=state.go_live,
                            period_end=None, reinstall_policy=policy)


@dataclass
class Quotas:
    agreements: Agreements

    def repository(self, customer_id: str, kind: str, discount: str | None) -> Repository[Any, Any]:
        def translate(event: Any, ledger: Any) -> list[Any]:
            if not isinstance(event, domain.QuotaConsumed):
                return []
            discounted = discount if domain.C7_DISCOUNT_FEE_PAID in event.clauses else None
            return [public.QuotaConsumed(ledger.agreement_id, customer_id, kind, event.ref, event.on.isoformat(),
                                         event.free_units, event.waived_units, event.billable_units, event.clauses,
                                         discounted)]

        return Repository(self.agreements.store, PRIVATE, domain.evolve, None, PUBLIC, translate)

    async def use(self, action: str, request: commands.UseQuota, *, command_id: str | None = None,
                  meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        agreement = await self._agreement(request.agreement_id)
        kind: domain.QuotaKind = request.kind
        # Each action takes its own fields of the request (a release has no units); the
        # domain's command says which it needs, refusing a missing one by name.
        fields: dict[str, Any] = request.model_dump(exclude_none=True, exclude={"agreement_id", "kind"})
        fields.setdefault("on", self.agreements.today())
        if action == "consume":
            # rule C7 [1]: the discount follows whether this year's fee is paid
            fields["annual_fee_paid"] = agreement.covered_on(fields["on"]) == "paid"
        command: Any = codec.parse(ACTIONS[action], fields)
        assert agreement.terms is not None
        discount = str(agreement.terms.training.paid_up_discount_percent)

        def decide(ledger: Any) -> list[Any]:
            events: list[Any] = []
            if ledger is None:
                events = domain.decide(opening(agreement, kind), None)
                ledger = domain.replay(events)
            return events + domain.decide(command, ledger)

        repo = self.repository(agreement.customer_id, kind, discount)
        return await repo.execute(stream_of(agreement.agreement_id, kind), decide, command_id=command_id, meta=meta)

    async def balance(self, request: commands.QuotaRef) -> Mapping[str, Any]:
        return await self.balance_of(await self._agreement(request.agreement_id), request.kind)

    async def balance_of(self, agreement: agreements_domain.Agreement, kind: domain.QuotaKind) -> Mapping[str, Any]:
        """A ledger not used yet holds what the agreement grants (C7, C10)."""
        ledger, _ = await self.repository("", kind, None).load(stream_of(agreement.agreement_id, kind))
        if ledger is None:
            ledger = domain.replay(domain.decide(opening(agreement, kind), None))
        return {"agreement_id": agreement.agreement_id, "kind": kind, **codec.dump(domain.balance(ledger))}

    async def _agreement(self, agreement_id: str) -> agreements_domain.Agreement:
        state, _ = await self.agreements.load(agreement_id)
        require(state.status == "active", "not_found", "agreement_id", "no active agreement",
                reason="agreement.none_active")
        return state
