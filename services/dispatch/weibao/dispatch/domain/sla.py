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
amount of business time, added on one timeline.

Which days serve (rule C20) is `service_days`, the ISO weekdays of the desk (1 =
Monday ... 7 = Sunday; Monday to Friday unless the agreement says otherwise; "7 days
a week" is all seven); deadlines.py says how they meet the official calendar.

Priority (issue 13): clauses set deadlines; priority orders work. A priority moves a
deadline only where the agreement sets targets for it (`priority_targets`), and then
the tighter of clause and target wins, compared in business time; a clock the
clauses do not set (by arrangement) is set by the target. A target's hours count in
the agreement's calendar, as a clause's hours do.

rule C16: under 24-hour phone support, a request that comes in by phone has its
respond-by clock counted around the clock (`around_the_clock`), not in service hours;
its other clocks keep the agreement's calendar."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from weibao.shared.errors import Rejected, require
from weibao.shared.public.contracts import MONDAY_TO_FRIDAY
from weibao.shared.public.dispatch import PRIORITIES, CalendarKind, ClockKind, Phase, Priority

ServiceHours = tuple[time, time]
Kind = ClockKind  # a deadline clock (deadlines.py counts them)

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
    service_days: tuple[int, ...] = MONDAY_TO_FRIDAY  # rule C20: ISO weekdays served (working calendar)
    around_the_clock: tuple[Kind, ...] = ()  # rule C16: clocks counted on the clock calendar regardless
    priority: Priority | None = None  # issue 13: the priority the targets were read for
    set_by_priority: tuple[Kind, ...] = ()  # issue 13: the clocks its targets set or tightened

    @property
    def sets_deadlines(self) -> bool:
        return any(x is not None for x in (self.respond_within, self.arrive_within, self.resolve_within))


def sla_from_terms(onsite: Mapping[str, Any], *, local: bool, phase: Phase | None,
                   priority: Priority | None = None, channel: str | None = None) -> Sla:
    """rules C9, C14, C15, C16, C20 and D2, from `CoverageGranted.terms["onsite"]`.

    `local` is the application's answer to D1 (office city or radius); `phase` is the
    customer's C14 phase; `priority` the request's (issue 13: it matters only where the
    agreement sets targets for it); `channel` how the request came in (C13; "phone"
    under C16 counts the respond clock around the clock). Unknown fields are ignored
    (messages grow); a kind we do not know, or a missing number the kind needs, is
    refused rather than guessed. Contracts' `sla_for` answers the same."""
    require(priority is None or priority in PRIORITIES, "invalid", "priority",
            f"one of {', '.join(PRIORITIES)}, not {priority!r}")
    kind = onsite.get("kind")
    calendar = onsite.get("calendar", "clock")
    require(calendar in ("clock", "working"), "invalid", "onsite.calendar", f"unknown calendar {calendar!r}")
    hours = _service_hours(onsite.get("service_hours"))
    days = _service_days(onsite.get("service_days"))
    phone = bool(onsite.get("phone_support_24h", False))
    extra = (*(("C16",) if phone else ()), *(("C20",) if hours is not None or days != MONDAY_TO_FRIDAY else ()))
    respond: timedelta | None = None
    arrive: Span | None = None
    resolve: timedelta | None = None
    clauses: tuple[str, ...]
    match kind:
        case "local_or_out_of_town":
            # rule C9: local customers within N hours, out-of-town customers within M days
            clauses = ("C9",)
            arrive = (Span.hours(_positive(onsite, "local_hours")) if local
                      else Span.days(_positive(onsite, "out_of_town_days")))
        case "by_phase":
            # rule C14: parallel run within 2 days, after cut-over within 1 day. An unknown
            # phase reads as parallel run, as contracts' coverage decision does, so both
            # services cite the same deadline.
            clauses = ("C14",)
            arrive = Span.days(_positive(onsite, "cutover_days" if phase == "cutover" else "parallel_run_days"))
        case "respond_resolve":
            # rule C15: respond within 24 hours and resolve within 24 hours
            clauses = ("C15",)
            respond = timedelta(hours=_positive(onsite, "respond_hours"))
            resolve = timedelta(hours=_positive(onsite, "resolve_hours"))
        case "by_arrangement":
            clauses = ()
        case _:
            raise Rejected("invalid", "onsite.kind", f"unknown on-site SLA kind {kind!r}")
    # issue 13: the priority's targets, where the agreement sets them; the tighter wins
    targets = _targets(onsite, priority)
    by_priority: tuple[Kind, ...] = ()
    if "respond_hours" in targets and _tighter(timedelta(hours=targets["respond_hours"]), respond):
        respond, by_priority = timedelta(hours=targets["respond_hours"]), (*by_priority, "respond")
    if "arrive_hours" in targets and _tighter(
            Span.hours(targets["arrive_hours"]).business_time(calendar, hours),
            arrive.business_time(calendar, hours) if arrive else None):
        arrive, by_priority = Span.hours(targets["arrive_hours"]), (*by_priority, "arrive")
    if "resolve_hours" in targets and _tighter(timedelta(hours=targets["resolve_hours"]), resolve):
        resolve, by_priority = timedelta(hours=targets["resolve_hours"]), (*by_priority, "resolve")
    # rule C16: the phone line never closes, so a phone request is answered around the clock
    around: tuple[Kind, ...] = ("respond",) if phone and channel == "phone" and respond is not None else ()
    return Sla(respond, arrive, resolve, calendar, hours, (*clauses, *extra), phone, days, around,
               priority if targets else None, by_priority)


def _tighter(target: timedelta, clause: timedelta | None) -> bool:
    """A target wins when the clauses set no such clock, or allow more; a tie keeps the clause."""
    return clause is None or target < clause


def _targets(onsite: Mapping[str, Any], priority: Priority | None) -> dict[str, int]:
    """issue 13: `onsite.priority_targets[priority]`, hours by target; none without targets."""
    raw = onsite.get("priority_targets")
    if raw is None or priority is None:
        return {}
    require(isinstance(raw, Mapping), "invalid", "onsite.priority_targets", "targets by priority")
    entry = raw.get(priority)
    if entry is None:
        return {}
    field = f"onsite.priority_targets.{priority}"
    require(isinstance(entry, Mapping), "invalid", field, "respond_hours, arrive_hours, resolve_hours")
    targets: dict[str, int] = {}
    for name in ("respond_hours", "arrive_hours", "resolve_hours"):
        value = entry.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise Rejected("invalid", f"{field}.{name}", f"a positive number of hours, not {value!r}")
        targets[name] = value
    return targets


def _positive(onsite: Mapping[str, Any], name: str) -> int:
    value = onsite.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise Rejected("invalid", f"onsite.{name}", f"a {onsite.get('kind')} SLA needs {name} > 0, got {value!r}")
    return value


def _service_days(raw: Any) -> tuple[int, ...]:
    """rule C20: the ISO weekdays served, 1 (Monday) to 7 (Sunday); Monday to Friday when unsaid."""
    if raw is None:
        return MONDAY_TO_FRIDAY
    wanted = "the ISO weekdays served, each once: 1 (Monday) to 7 (Sunday)"
    require(isinstance(raw, list | tuple) and bool(raw), "invalid", "onsite.service_days", wanted)
    require(all(isinstance(day, int) and not isinstance(day, bool) and 1 <= day <= 7 for day in raw)
            and len(set(raw)) == len(raw), "invalid", "onsite.service_days", wanted)
    return tuple(sorted(raw))


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
