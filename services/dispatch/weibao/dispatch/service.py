"""The dispatch service as the runtime sees it."""

from weibao.dispatch.adapters.coverage import CoverageBook
from weibao.dispatch.adapters.technician_board import TechnicianBoard
from weibao.dispatch.adapters.ticket_board import TicketBoard
from weibao.dispatch.entrypoints.endpoints import register, watch_deadlines
from weibao.shared.readmodels import StreamIndex
from weibao.shared.service import ServiceSpec

spec = ServiceSpec(
    name="dispatch",
    read_models=lambda _store: [
        ("contracts", CoverageBook()),  # coverage and sites, as contracts published them
        ("dispatch", TechnicianBoard()),  # who can go where (D4)
        ("dispatch", TicketBoard()),  # the dispatcher's lists: what is open, whose, how urgent (D1)
        ("dispatch", StreamIndex("dispatch")),  # the auditor's list of aggregates
    ],
    endpoints=register,
    background=watch_deadlines,
)
