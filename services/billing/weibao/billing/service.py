"""The billing service as the runtime sees it."""

from collections.abc import Sequence

from weibao.billing.entrypoints.endpoints import Policy, billing_for, invoice_book, register
from weibao.shared.eventstore import EventStore
from weibao.shared.readmodels import ReadModel, StreamIndex
from weibao.shared.service import ServiceSpec


def read_models(store: EventStore) -> Sequence[tuple[str, ReadModel]]:
    billing = billing_for(store)  # one Billing for both policies: one terms book, one drafts table
    return [
        ("contracts", Policy(billing, "contracts")),  # fees due, quotas, dongles; terms and names
        ("dispatch", Policy(billing, "dispatch")),  # work and expenses
        ("billing", StreamIndex("billing")),  # the auditor's list
        ("billing", invoice_book(billing)),  # invoices and lines: lists and exports
    ]


spec = ServiceSpec(name="billing", read_models=read_models, endpoints=register)
