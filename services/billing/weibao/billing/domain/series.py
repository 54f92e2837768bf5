"""Gap-free invoice numbers: one stream per series ("INV-2026").

Chinese invoices are numbered without gaps, in order. The application issues an
invoice by first allocating its number here, then issuing it on the invoice's stream.
Two allocations racing on the series stream append at the same version: optimistic
concurrency refuses one, which retries, so sequences never skip or repeat. Allocating
again for the same invoice (a retry, a redelivery) returns its number, no new event.

The state starts as `Series(series_id)`: the id comes from the stream, not an event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from weibao.shared.errors import require

WIDTH = 6
LAST_SEQUENCE = 10**WIDTH - 1


@dataclass(frozen=True)
class Allocate:
    invoice_id: str


Command = Allocate


@dataclass(frozen=True)
class NumberAllocated:
    invoice_id: str
    number: str
    sequence: int


Event = NumberAllocated


@dataclass(frozen=True)
class Series:
    series_id: str
    last_sequence: int = 0
    numbers: Mapping[str, str] = field(default_factory=dict)  # invoice_id -> number

    def number_of(self, invoice_id: str) -> str | None:
        return self.numbers.get(invoice_id)


def format_number(series_id: str, sequence: int) -> str:
    return f"{series_id}-{sequence:0{WIDTH}d}"


def decide(command: Command, state: Series) -> list[Event]:
    match command:
        case Allocate():
            require(bool(state.series_id), "missing", "series_id", "a series has an id such as INV-2026")
            require(bool(command.invoice_id), "missing", "invoice_id", "a number is allocated to an invoice")
            if command.invoice_id in state.numbers:
                return []  # already numbered: the caller reads it with `number_of`
            sequence = state.last_sequence + 1
            require(sequence <= LAST_SEQUENCE, "exhausted", "series_id",
                    f"{state.series_id} has no number left; open the next series")
            return [NumberAllocated(command.invoice_id, format_number(state.series_id, sequence), sequence)]
    raise AssertionError(f"unknown command {command!r}")


def evolve(state: Series, event: Event) -> Series:
    match event:
        case NumberAllocated():
            assert event.sequence == state.last_sequence + 1, "series numbers are gap-free"
            return replace(state, last_sequence=event.sequence,
                           numbers={**state.numbers, event.invoice_id: event.number})
    raise AssertionError(f"unknown event {event!r}")


def fold(series_id: str, events: Iterable[Event]) -> Series:
    """Replay a whole series in linear time (`evolve` copies the map once per event)."""
    numbers: dict[str, str] = {}
    last = 0
    for event in events:
        assert event.sequence == last + 1, "series numbers are gap-free"
        numbers[event.invoice_id] = event.number
        last = event.sequence
    return Series(series_id, last, numbers)
