"""The billing service as the runtime sees it."""

from collections.abc import Sequence

from weibao.billing.entrypoints.endpoints import Policy, invoice_book, policy_for, register
from weibao.shared.eventstore import EventStore
from weibao.shared.readmodels import ReadModel, StreamIndex
from weibao.shared.service import ServiceSpec


def read_models(store: EventStore) -> Sequence[tuple[str, ReadModel]]:
    policy = policy_for(store)  # one for both upstreams: one terms book, one drafts table, one invoice cache
    return [
        ("contracts", Policy(policy, "contracts")),  # fees due, quotas, dongles; terms and names
        ("dispatch", Policy(policy, "dispatch")),  # work and expenses
        ("billing", StreamIndex("billing")),  # the auditor's list
        ("billing", invoice_book(policy)),  # invoices and lines: lists and exports
    ]


spec = ServiceSpec(name="billing", read_models=read_models, endpoints=register)
