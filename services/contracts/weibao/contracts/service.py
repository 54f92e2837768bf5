"""The contracts service as the runtime sees it."""

from weibao.contracts.adapters.agreement_register import AgreementRegister
from weibao.contracts.adapters.customer_directory import CustomerDirectory
from weibao.contracts.entrypoints.endpoints import assess_daily, register
from weibao.shared.readmodels import StreamIndex
from weibao.shared.service import ServiceSpec

spec = ServiceSpec(
    name="contracts",
    read_models=lambda _store: [
        # The index of this service's own aggregates: the auditor's list, and the daily
        # assessment's list of agreements.
        ("contracts", StreamIndex("contracts")),
        ("contracts", CustomerDirectory()),  # customers and sites, searched by name or id
        ("contracts", AgreementRegister()),  # agreements by customer and standing (C1, C2)
    ],
    endpoints=register,
    background=assess_daily,
)
