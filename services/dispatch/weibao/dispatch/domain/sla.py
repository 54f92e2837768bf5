"""The service level a request is owed, read from the terms contracts publish.

Dispatch never imports contracts: `contracts.CoverageGranted` carries the agreement's
terms as plain data and `terms["onsite"]` is turned into dispatch's own `Sla` here
(rules D1 and D2). Pure: no I/O, no clock.

How "M days" counts (rules C9 and C14): a span in days is worth M whole *service
days* of business time. On the clock calendar a day is 24 hours, so "within 2 days"
is 48 hours after the request. On the working calendar (D2) a day is one full service
window (C20, 09:00-18:00 unless the agreement says otherwise: 9 hours), so "within 2
days" is 18 service hours, which lands at the same time of day two working days later
(a request outside service hours starts counting at the next opening). We prefer this
to "by the close of the M-th working day": that rule gives a request at 17:55 the
same deadline as one at 09:00, and it would need a second currency of business time
for pauses and at-risk fractions; with whole service days every deadline is one
amount of business time, added on one timeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from weibao.shared.errors import Rejected, require

CalendarKind = Literal["clock", "working"]
Phase = Literal["parallel_run", "cutover"]
ServiceHours = tuple[time, time]

# rule C20: 9:00-18:00 in the servicing office's local time, unless the agreement says otherwise
DEFAULT_SERVICE_HOURS: ServiceHours = (time(9), time(18))


@dataclass(frozen=True)
class Span:
    """A deadline as the agreement words it: N hours (C9, C15) or M days (C9, C14)."""

    amount: int
    unit: Literal["hours", "days"]

    def __post_init__(self) -> None:
        require(self.amount > 0, "invalid", "span", f"a deadline of {self.amount} {self.unit} is not a deadline")

    @classmethod
    def hours(cls, amount: int) -> Span:
        return cls(amount, "hours")

    @classmethod
    def days(cls, amount: int) -> Span:
        return cls(amount, "days")

    def business_time(self, calendar: CalendarKind, service_hours: ServiceHours | None = None) -> timedelta:
        """How much business time the span allows (see the module's note on days)."""
        if self.unit == "hours":
            return timedelta(hours=self.amount)
        if calendar == "clock":
            return timedelta(days=self.amount)
        return self.amount * service_day(service_hours)

    def __str__(self) -> str:
        return f"{self.amount} {self.unit}"


def service_day(service_hours: ServiceHours | None) -> timedelta:
    """The length of one day's service window (rule C20)."""
    opens, closes = service_hours or DEFAULT_SERVICE_HOURS
    return datetime.combine(date.min, closes) - datetime.combine(date.min, opens)


@dataclass(frozen=True)
class Sla:
    """rule D1: how soon someone must respond, be on site, resolve; D2: how the clock counts.

    A field left None sets no deadline (C16 and C20 alone, "by arrangement", set none)."""

    respond_within: timedelta | None
    arrive_within: Span | None
    resolve_within: timedelta | None
    calendar: CalendarKind
    service_hours: ServiceHours | None
    clauses: tuple[str, ...]
    phone_support_24h: bool = False  # rule C16: the phone line (C13's first channel) never closes

    @property
    def sets_deadlines(self) -> bool:
        return any(x is not None for x in (self.respond_within, self.arrive_within, self.resolve_within))


def sla_from_terms(onsite: Mapping[str, Any], *, local: bool, phase: Phase | None) -> Sla:
    """rules C9, C14, C15, C16, C20 and D2, from `CoverageGranted.terms["onsite"]`.

    `local` is the application's answer to D1 (office city or radius); `phase` is the
    customer's C14 phase. Unknown fields are ignored (messages grow); a kind we do not
    know, or a missing number the kind needs, is refused rather than guessed."""
    kind = onsite.get("kind")
    calendar = onsite.get("calendar", "clock")
    require(calendar in ("clock", "working"), "invalid", "onsite.calendar", f"unknown calendar {calendar!r}")
    hours = _service_hours(onsite.get("service_hours"))
    phone = bool(onsite.get("phone_support_24h", False))
    extra = (*(("C16",) if phone else ()), *(("C20",) if hours is not None else ()))

    def sla(clause: tuple[str, ...], *, respond: timedelta | None = None, arrive: Span | None = None,
            resolve: timedelta | None = None) -> Sla:
        return Sla(respond, arrive, resolve, calendar, hours, (*clause, *extra), phone)

    match kind:
        case "local_or_out_of_town":
            # rule C9: local customers within N hours, out-of-town customers within M days
            if local:
                return sla(("C9",), arrive=Span.hours(_positive(onsite, "local_hours")))
            return sla(("C9",), arrive=Span.days(_positive(onsite, "out_of_town_days")))
        case "by_phase":
            # rule C14: parallel run within 2 days, after cut-over within 1 day. An unknown
            # phase reads as parallel run, as contracts' coverage decision does, so both
            # services cite the same deadline.
            field = "cutover_days" if phase == "cutover" else "parallel_run_days"
            return sla(("C14",), arrive=Span.days(_positive(onsite, field)))
        case "respond_resolve":
            # rule C15: respond within 24 hours and resolve within 24 hours
            return sla(("C15",), respond=timedelta(hours=_positive(onsite, "respond_hours")),
                       resolve=timedelta(hours=_positive(onsite, "resolve_hours")))
        case "by_arrangement":
            return sla(())
    raise Rejected("invalid", "onsite.kind", f"unknown on-site SLA kind {kind!r}")


def _positive(onsite: Mapping[str, Any], name: str) -> int:
    value = onsite.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise Rejected("invalid", f"onsite.{name}", f"a {onsite.get('kind')} SLA needs {name} > 0, got {value!r}")
    return value


def _service_hours(raw: Any) -> ServiceHours | None:
    """rule C20: ["09:00", "18:00"], the office's local time; one window a day, not overnight."""
    if raw is None:
        return None
    require(isinstance(raw, list | tuple) and len(raw) == 2, "invalid", "onsite.service_hours",
            "two times, opening and closing")
    try:
        opens, closes = time.fromisoformat(raw[0]), time.fromisoformat(raw[1])
    except (TypeError, ValueError) as error:
        raise Rejected("invalid", "onsite.service_hours", f"not HH:MM times: {raw!r}") from error
    require(opens.tzinfo is None and closes.tzinfo is None, "invalid", "onsite.service_hours",
            "the office's local time, without an offset")
    require(opens < closes, "invalid", "onsite.service_hours", "the window opens before it closes, the same day")
    return opens, closes
