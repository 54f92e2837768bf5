"""The dispatch service as the runtime sees it."""

import asyncio

from weibao.dispatch.adapters.coverage import CoverageBook
from weibao.dispatch.adapters.technician_board import TechnicianBoard
from weibao.dispatch.adapters.ticket_board import TicketBoard
from weibao.dispatch.entrypoints import calendar
from weibao.dispatch.entrypoints.endpoints import register, watch_deadlines
from weibao.shared.readmodels import StreamIndex
from weibao.shared.service import Runtime, ServiceSpec


async def background(runtime: Runtime, stop: asyncio.Event) -> None:
    """rule D2: the official calendar's years (the log's, and the file's new ones entered)
    before the deadline clock's first turn; then the clock."""
    await calendar.loaded(runtime, stop)
    await watch_deadlines(runtime, stop)


spec = ServiceSpec(
    name="dispatch",
    read_models=lambda _store: [
        ("contracts", CoverageBook()),  # coverage and sites, as contracts published them
        ("dispatch", TechnicianBoard()),  # who can go where (D4)
        ("dispatch", TicketBoard()),  # the dispatcher's lists: what is open, whose, how urgent (D1)
        ("dispatch", StreamIndex("dispatch")),  # the auditor's list of aggregates
    ],
    endpoints=register,
    background=background,
)
