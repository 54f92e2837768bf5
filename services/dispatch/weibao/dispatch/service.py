"""The dispatch service as the runtime sees it."""

from weibao.shared.readmodels import StreamIndex
from weibao.shared.service import ServiceSpec

spec = ServiceSpec(
    name="dispatch",
    # The index of this service's own aggregates, for the auditor's history view.
    read_models=lambda: [("dispatch", StreamIndex("dispatch"))],
)
