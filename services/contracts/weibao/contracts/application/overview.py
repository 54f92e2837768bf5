"""The dispatcher's customer page in one answer: who the customer is, and for each of its
agreements its standing, what contracts says about a fault today (C1, C2, C9/C14/C15),
and what is left of its free quotas (C7, C10).

The customer and each agreement are folded from the log; which agreements a customer
has comes from the agreement register (a read model), so one signed a moment ago may
appear a moment later."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from weibao.contracts.application.agreements import Agreements
from weibao.contracts.application.customers import Customers, customer_view
from weibao.contracts.application.quotas import KINDS, Quotas
from weibao.contracts.domain import agreement as domain
from weibao.contracts.domain.coverage import Question, decide_coverage
from weibao.shared import codec
from weibao.shared.errors import require


@dataclass
class Overview:
    agreements: Agreements
    customers: Customers
    quotas: Quotas
    agreements_of: Callable[[str], Awaitable[list[str]]]  # the register's ids of a customer's agreements

    async def of(self, customer_id: str) -> dict[str, Any]:
        customer = await self.customers.load(customer_id)
        require(bool(customer.customer_id), "not_found", "customer_id", "no such customer", reason="customer.not_found")
        today = self.agreements.today()
        found = []
        for agreement_id in await self.agreements_of(customer_id):
            state, version = await self.agreements.load(agreement_id)
            if state.status != "none":
                found.append({"version": version, **await self._agreement(state, today)})
        return {"customer": customer_view(customer), "agreements": found}

    async def _agreement(self, state: domain.Agreement, today: date) -> Mapping[str, Any]:
        template = self.agreements.templates.get(state.template_id)
        # quota.balance answers for active agreements only: a terminated one has none left to use
        quotas = [await self.quotas.balance_of(state, kind) for kind in KINDS] if state.status == "active" else []
        return {
            **domain.summary(state),
            "customer_id": state.customer_id,
            "template_name": template.template.name if template else state.template_id,
            "site_ids": list(state.site_ids),
            "coverage": coverage_today(state, today),
            "quotas": quotas,
        }


def coverage_today(state: domain.Agreement, today: date) -> dict[str, Any]:
    """`weibao.contracts.coverage` for a fault on site today (the SLA of a local site, C9),
    with the period that covers today: free (C1), paid (C2) or none."""
    decision = decide_coverage(state, Question(on=today, service="fault"))
    return {"on": today.isoformat(), "period": state.covered_on(today), **codec.dump(decision)}
