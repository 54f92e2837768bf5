"""Warranties of vendor-supplied hardware, one stream per serial number
(rules C11, C18, C19, C21-C24)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from weibao.contracts.application.published import PUBLIC
from weibao.contracts.domain import warranty as domain
from weibao.shared import codec
from weibao.shared.aggregates import Repository
from weibao.shared.commands import Body
from weibao.shared.commands import contracts as commands
from weibao.shared.errors import require
from weibao.shared.events import RecordedEvent
from weibao.shared.eventstore import EventStore
from weibao.shared.money import as_text
from weibao.shared.public import contracts as public

PRIVATE = codec.Codec(
    [domain.HardwareRegistered, domain.RepairRecorded, domain.HardwareReturned, domain.HardwareReplaced],
    prefix="private.",
)
ACTIONS: dict[str, type] = {
    "register": domain.RegisterHardware, "repair": domain.RecordRepair, "return": domain.RecordReturn,
    "replace": domain.RecordReplacement,
}


def stream_of(serial: str) -> str:
    return f"hardware-{serial}"


def translate(event: Any, unit: domain.Hardware) -> list[Any]:
    """Billing learns who pays for each repair, return and replacement (B2, B7)."""
    registered = unit.registered
    common = (event.serial, registered.customer_id, registered.kind)
    match event:
        case domain.RepairRecorded():
            return [public.WarrantyVerdict(*common, "repair", event.repaired_on.isoformat(), event.covered,
                                           event.clauses, None, None, event.warranty_until.isoformat())]
        case domain.HardwareReturned():
            return [public.WarrantyVerdict(*common, "return", event.returned_on.isoformat(), True, event.clauses,
                                           "return_exchange_or_repair")]
        case domain.HardwareReplaced():
            return [public.WarrantyVerdict(*common, "replacement", event.replaced_on.isoformat(), event.fee == 0,
                                           event.clauses, event.remedy, as_text(event.fee))]
    return []


@dataclass
class Warranties:
    store: EventStore

    @property
    def repository(self) -> Repository[Any, Any]:
        return Repository(self.store, PRIVATE, domain.evolve, None, PUBLIC, translate)

    async def record(self, action: str, request: Body, *, command_id: str | None = None,
                     meta: Mapping[str, Any] | None = None) -> list[RecordedEvent]:
        """`request` is the action's schema (commands.WARRANTY_ACTIONS), whose fields are
        its domain command's: a field not sent takes the domain's default."""
        command: Any = ACTIONS[action](**request.model_dump(exclude_unset=True))
        return await self.repository.execute(stream_of(command.serial), lambda unit: domain.decide(command, unit),
                                             command_id=command_id, meta=meta)

    async def verdict(self, question: commands.WarrantyQuestion) -> domain.Verdict:
        unit, _ = await self.repository.load(stream_of(question.serial))
        require(unit is not None, "not_found", "serial", "no hardware registered with this serial",
                reason="warranty.serial_not_found")
        # The fault's kind and cause are the domain's vocabulary: it refuses an unknown one by
        # name ("unknown"), so the question's text goes in as it came.
        return domain.verdict(unit, fault_on=question.fault_on, fault=cast(domain.Fault, question.fault),
                              cause=question.cause, part=question.part)
