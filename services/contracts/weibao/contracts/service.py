"""The contracts service as the runtime sees it."""

from weibao.contracts.entrypoints.endpoints import assess_daily, register
from weibao.shared.readmodels import StreamIndex
from weibao.shared.service import ServiceSpec

spec = ServiceSpec(
    name="contracts",
    # The index of this service's own aggregates: the auditor's list, and the daily
    # assessment's list of agreements.
    read_models=lambda _store: [("contracts", StreamIndex("contracts"))],
    endpoints=register,
    background=assess_daily,
)
