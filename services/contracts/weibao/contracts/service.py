"""The contracts service as the runtime sees it."""

from weibao.shared.readmodels import StreamIndex
from weibao.shared.service import ServiceSpec

spec = ServiceSpec(
    name="contracts",
    # The index of this service's own aggregates, for the auditor's history view.
    read_models=lambda: [("contracts", StreamIndex("contracts"))],
)
