"""Pricing: what a public message from contracts or dispatch makes the customer owe.

One pure function per billing rule of DOMAIN.md (B1-B7). Each takes the public message
as its dataclass (`weibao.shared.public.read` decodes it: a field renamed upstream fails
mypy here), the agreement's `terms` as published by the latest
`CoverageGranted`/`CoverageChanged` when the rule needs them, and the `Source` (service,
position, message type) the message came from. Each returns a list of `BillableItem`,
empty when nothing is owed. The values are still checked (an amount is exact decimal
text, a kind one this module prices): the schema says a field is text, not that it is
an amount.

Choices made here, so invoices can be explained:

- Item ids are `<service>:<position>:<n>`: a function of the source alone, so a
  message redelivered gives the same ids and billing de-duplicates on them (exactly-once
  effects are decided downstream by `item_id`).
- Money is `Decimal`, never float: rates and prices go through `yuan()` (which refuses
  floats), every `amount` is `to_fen(quantity * unit_price)`, rounded once, half-up.
  VAT is not applied here: invoices apply the rate of each line's kind (B8).
- Days of hardware or network work (rule C4, "part of a day counts as a whole day"):
  per technician, per request, per calendar day (issue 13: C4 rounds the day, not the
  work record). A record bills each calendar day it touches, in the agreement's time
  zone (`terms["time_zone"]`, an IANA name; Beijing time when the agreement says
  nothing), that the same technician has not already been billed for on the same
  request: two records on one day (09-12, 13-17) bill one day, a 2-hour job across
  midnight bills both days, a record ending at 00:00 sharp does not touch the next day.
  The days already billed are the caller's to know (`already`: the policy keeps them,
  adapters/workdays.py); a record that adds no new day bills nothing: no line, not a
  zero line (a line must be money owed or money to be agreed). Zero elapsed time bills
  nothing. Software work outside coverage (B3) is not C4's: it stays per record, started
  hours (ceil(elapsed / 1 h)) or started days (ceil(elapsed / 24 h)) (our choice: DOMAIN
  fixes no rounding for B3). A hardware verdict other than "covered" under C11/C19 is
  billed: work that was logged was done at the customer's request (C4).
- Datetimes in messages are ISO with an offset; a naive one is read as UTC (public
  messages carry UTC). The day an item occurred on is the local date in China
  (UTC+8: China has kept one offset, without summer time, since 1991, so no tz
  database is needed unless an agreement names another zone); a day-billed item's is
  the first day it bills.
- When no rate is known (no hardware day rate, no service rate for work outside
  coverage, no price for a quota kind, no dongle fee) the item is still produced, with
  `unit_price` 0 and the clause `RATE_TO_BE_AGREED`, rather than a guessed price: the
  work is not lost and an operator prices it (C10 [4] "a negotiated amount").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from weibao.shared.errors import Rejected
from weibao.shared.money import to_fen, yuan
from weibao.shared.public.contracts import ChangeRequestAssessed, CoverageGranted, QuotaConsumed, WarrantyVerdict
from weibao.shared.public.dispatch import ExpenseRecorded, WorkLogged

ItemKind = Literal[
    "expense",  # B1, C5
    "hardware_days",  # B2, C4
    "network_days",  # B2, C4
    "service",  # B3, C1
    "annual_fee",  # B4, C2
    "installation",  # B5, C10
    "training",  # B5, C7
    "change_request",  # B6, C8
    "dongle",  # B7, C18
]

# Not a DOMAIN.md rule: marks an item whose price an operator must still set.
RATE_TO_BE_AGREED = "RATE_TO_BE_AGREED"

CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")
_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)

EXPENSE_LABELS: Mapping[str, str] = {"transport": "交通费", "lodging": "住宿费", "meals": "餐费", "travel": "差旅费"}
# rule B5: the quota kinds contracts publishes, with the item kind, unit and label of each
QUOTA_KINDS: Mapping[str, tuple[ItemKind, str, str]] = {
    "installation": ("installation", "次", "超出免费次数的安装"),  # rule C10
    "training_seat": ("training", "人", "超出免费名额的培训"),  # rule C7
    "onsite_training_session": ("training", "次", "超出免费次数的现场培训"),  # rule C7
}
# Where work was done, on the customer's line (B3: a desk hour by phone or remote session is
# billed as an on-site one, and the clerk and the customer see which it was)
WORK_CHANNEL_LABELS: Mapping[str, str] = {"onsite": "现场", "phone": "电话", "remote": "远程"}
# Why work outside coverage is billable, when the verdict says so (B3)
_SERVICE_REASONS = ("C1", "C12", "C17")


@dataclass(frozen=True)
class Source:
    """The public message an item derives from (B8: every invoice line names its events)."""

    service: str
    position: int
    message_type: str


@dataclass(frozen=True)
class BillableItem:
    item_id: str
    customer_id: str
    agreement_id: str | None
    kind: ItemKind
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    amount: Decimal  # yuan, to the fen, before VAT
    clauses: tuple[str, ...]
    sources: tuple[Source, ...]
    occurred_on: date
    # rule C4: the calendar days a day-billed item bills (hardware or network work), so
    # the policy can record them as billed; () for every other item.
    days: tuple[date, ...] = ()


def item_id(source: Source, n: int = 0) -> str:
    return f"{source.service}:{source.position}:{n}"


# rule B1 (C5)


def for_expense(expense: ExpenseRecorded, terms: Mapping[str, Any], source: Source) -> list[BillableItem]:
    """rules B1, C5: travel, transport, lodging and meals at cost, inside coverage too,
    when the agreement says the customer bears them (an explicit `true`: no terms, no bill).
    Dated by its receipt: one without a date is dated by the caller (the policy: the day
    it was recorded), never parked."""
    if terms.get("customer_pays_expenses") is not True:
        return []
    kind = str(expense.kind)
    if kind not in EXPENSE_LABELS:
        raise Rejected("invalid", "kind", f"not an expense kind: {kind!r}; one of {', '.join(EXPENSE_LABELS)}")
    amount = money(expense.amount, "amount")
    if amount == 0:
        return []
    receipt = expense.receipt_no or "无票号"
    nights = expense.nights
    detail = f", {nights}晚" if kind == "lodging" and nights else ""
    return [_priced(source, (expense.customer_id, expense.agreement_id), "expense",
                    f"{EXPENSE_LABELS[kind]}（票据 {receipt}{detail}）", Decimal(1), unit="项", rate=amount,
                    clauses=("B1", "C5"), on=day(expense.receipt_date, "receipt_date"))]


# rules B2 (C4, C11, C19) and B3 (C1)


def for_work(work: WorkLogged, terms: Mapping[str, Any], source: Source,
             already: Collection[date] = ()) -> list[BillableItem]:
    """Hardware and network days (B2, C4); software work outside coverage (B3).

    Hardware or network work is billed per calendar day at `terms["hardware"]["day_rate"]`:
    the days of `work_days`, less those `already` billed for the same technician and
    request (rule C4 per calendar day; nothing when no day is new). Software work inside
    coverage is free; outside it (any other verdict, e.g. C1, C17) it is billed at
    `terms["service"]["hourly_rate"]` per started hour, else `terms["service"]["day_rate"]`
    per started day, else at a rate to be agreed."""
    kind = str(work.kind)
    started, elapsed = _span(work)
    if elapsed == timedelta(0):
        return []
    match kind:
        case "hardware" | "network":
            days = tuple(sorted(set(work_days(work, terms)) - set(already)))
            if not days:
                return []  # rule C4: warranty work, or every day already billed (module docstring)
            hardware = terms.get("hardware") or {}
            rate = hardware.get("day_rate")
            label = "硬件维护" if kind == "hardware" else "网络维护"
            item = _priced(source, (work.customer_id, work.agreement_id),
                           "hardware_days" if kind == "hardware" else "network_days",
                           f"{label}（{_where(work)}工单 {work.ticket_id}，{'、'.join(map(str, days))}）",
                           Decimal(len(days)), unit="天", rate=rate, clauses=("B2", "C4"), on=days[0])
            return [replace(item, days=days)]
        case "software":
            if work.verdict == "covered":
                return []
            on = started.astimezone(CHINA).date()
            reasons = tuple(c for c in _SERVICE_REASONS if c in work.clauses)
            service = terms.get("service") or {}
            description = f"服务范围外的软件服务（{_where(work)}工单 {work.ticket_id}）"
            if service.get("hourly_rate") is not None:
                hours = Decimal(_ceil(elapsed, _HOUR))
                return [_priced(source, (work.customer_id, work.agreement_id), "service", description, hours,
                                unit="小时", rate=service["hourly_rate"], clauses=("B3", *reasons), on=on)]
            days_worked = Decimal(_ceil(elapsed, _DAY))
            return [_priced(source, (work.customer_id, work.agreement_id), "service", description, days_worked,
                            unit="天", rate=service.get("day_rate"), clauses=("B3", *reasons), on=on)]
    raise Rejected("invalid", "kind", f"not a kind of work: {kind!r}; one of hardware, network, software")


def _where(work: WorkLogged) -> str:
    """'电话，' or '远程，' before the request's number for desk work; nothing for on-site work,
    which is what every line meant before desk work existed (their descriptions unchanged)."""
    return "" if work.channel == "onsite" else f"{WORK_CHANNEL_LABELS.get(work.channel, work.channel)}，"


def work_days(work: WorkLogged, terms: Mapping[str, Any]) -> tuple[date, ...]:
    """rule C4 per calendar day: the days a hardware or network record bills by the day
    (before those already billed are taken out): every calendar day in the agreement's
    time zone from its start to its end, the end excluded (work ending at 00:00 sharp
    spent no time on the new day). None for software work, for zero elapsed time, and for
    hardware under the vendor's own warranty (B2: a "covered" verdict citing C11 or C19;
    a lapsed warranty also cites C11, but its verdict is not "covered")."""
    started, elapsed = _span(work)
    if work.kind not in ("hardware", "network") or elapsed == timedelta(0):
        return ()
    if work.verdict == "covered" and {"C11", "C19"} & set(work.clauses):
        return ()  # rule B2: under the vendor's own warranty
    zone = _zone(terms)
    first = started.astimezone(zone).date()
    # The last instant worked, not the end: a half-open span, so [22:00, 00:00) is one day.
    last = (started + elapsed - timedelta.resolution).astimezone(zone).date()
    return tuple(first + timedelta(days=n) for n in range((last - first).days + 1))


# rule B4 (C2)


def for_renewal(granted: CoverageGranted, source: Source) -> list[BillableItem]:
    """rules B4, C2: the annual maintenance fee, billed when the customer renews: a period
    of coverage opened by a fee payment (basis "paid"), at the amount paid, dated the day
    it was paid. Nothing for the free year (C1), for a grant that names no payment (one
    recorded before issue 13: its fee was drafted from `FeeDue` then), or for a zero fee.
    A fee that merely falls due is a renewal notice, never an item (domain/renewal.py):
    no line for a period nobody agreed."""
    if granted.basis != "paid" or granted.payment_id is None:
        return []
    amount = money(granted.amount, "amount")
    if amount == 0:
        return []
    period = f"{granted.period_from} 至 {granted.period_to}"
    return [_priced(source, (granted.customer_id, granted.agreement_id), "annual_fee",
                    f"年度维护费（{period}，续约缴费 {granted.payment_id}）", Decimal(1), unit="项", rate=amount,
                    clauses=("B4", "C2"), on=day(granted.paid_on, "paid_on"))]


# rule B5 (C7, C10)


def for_quota(quota: QuotaConsumed, prices: Mapping[str, Decimal], source: Source) -> list[BillableItem]:
    """rules B5, C7, C10: the billable units beyond the free quota (free and waived units
    cost nothing), at `prices[kind]` (keyed by the message's kind). Training carries the
    paid-up customer's discount (C7 [1]) when the message gives `discount_percent`: the
    unit price is discounted exactly, then the amount is rounded once."""
    kind = quota.kind
    if kind not in QUOTA_KINDS:
        raise Rejected("invalid", "kind", f"not a quota kind: {kind!r}; one of {', '.join(QUOTA_KINDS)}")
    units = quota.billable_units
    if isinstance(units, bool) or not isinstance(units, int) or units < 0:
        raise Rejected("invalid", "billable_units", f"a count of units, not {units!r}")
    if units == 0:
        return []
    item_kind, unit, label = QUOTA_KINDS[kind]
    rule = "C7" if item_kind == "training" else "C10"
    price = prices.get(kind)
    description = f"{label}（{quota.ref}）"
    discount = quota.discount_percent
    if item_kind == "training" and discount is not None and price is not None:
        percent = _decimal(discount, "discount_percent")
        if not Decimal(0) <= percent <= Decimal(100):
            raise Rejected("invalid", "discount_percent", f"a percentage from 0 to 100, not {discount!r}")
        price = money(price, "price") * (Decimal(100) - percent) / Decimal(100)  # exact: a division by 100
        description += f"，已缴年费优惠 {percent}%"
    return [_priced(source, (quota.customer_id, quota.agreement_id), item_kind, description, Decimal(units), unit=unit,
                    rate=price, clauses=("B5", rule), on=day(quota.on, "on"))]


# rule B6 (C8)


def for_change_request(change: ChangeRequestAssessed, terms: Mapping[str, Any], day_rate: Decimal | None,
                       source: Source) -> list[BillableItem]:
    """rules B6, C8: a large change request, billed by its actual workload.

    A "covered" verdict is free, a "billable" one is billed; any other (neither said),
    the change is billed when it is larger than
    `terms["changes"]["free_up_to_working_days"]`. The whole workload is billed (C8:
    "按实际工作量收费"), in exact days, not rounded up."""
    workload = _decimal(change.workload_days, "workload_days")
    if workload < 0:
        raise Rejected("invalid", "workload_days", "a workload is not negative")
    verdict = change.verdict
    if verdict == "covered" or workload == 0:
        return []
    if verdict != "billable":
        limit = (terms.get("changes") or {}).get("free_up_to_working_days")
        if limit is None or workload <= _decimal(limit, "free_up_to_working_days"):
            return []  # rule C8: small changes are free
    description = change.description or f"需求变更（{change.ref}）"
    return [_priced(source, (change.customer_id, change.agreement_id), "change_request", description, workload,
                    unit="天", rate=day_rate, clauses=("B6", "C8"), on=day(change.on, "on"))]


# rule B7 (C18)


def for_dongle(verdict: WarrantyVerdict, terms: Mapping[str, Any], source: Source) -> list[BillableItem]:
    """rules B7, C18: a dongle replaced outside its warranty costs the verdict's fee
    (200 yuan in [3]); without one, `terms["warranty"]["dongle_replacement_fee"]`. A
    verdict names no agreement: the item names none either."""
    if verdict.kind != "dongle" or verdict.action != "replacement" or verdict.covered is not False:
        return []
    fee: object = verdict.fee
    if fee is None:
        fee = (terms.get("warranty") or {}).get("dongle_replacement_fee")
    if fee is not None and money(fee, "fee") == 0:
        return []
    reasons = ("C24",) if "C24" in verdict.clauses else ()
    return [_priced(source, (verdict.customer_id, None), "dongle", f"加密狗更换（序列号 {verdict.serial}）", Decimal(1),
                    unit="个", rate=fee, clauses=("B7", "C18", *reasons), on=day(verdict.on, "on"))]


# Helpers


def _priced(source: Source, owner: tuple[str, str | None], kind: ItemKind, description: str, quantity: Decimal, *,
            unit: str, rate: object, clauses: tuple[str, ...], on: date) -> BillableItem:
    """The one place an item is made: `amount` is always `to_fen(quantity * unit_price)`."""
    unit_price = Decimal("0.00") if rate is None else _price(rate)
    if rate is None:  # no known rate: an operator prices it, we do not guess
        description, clauses = f"{description}（单价待议）", (*clauses, RATE_TO_BE_AGREED)
    customer_id, agreement_id = owner  # who owes it, under which agreement (none: a dongle's verdict)
    return BillableItem(item_id(source), customer_id, agreement_id, kind, description, quantity, unit, unit_price,
                        to_fen(quantity * unit_price), clauses, (source,), on)


def _price(value: object) -> Decimal:
    """A rate or price: exact; a discounted one may hold more digits than the fen."""
    if isinstance(value, Decimal):
        if not value.is_finite() or value < 0:
            raise Rejected("invalid", "rate", f"not a price: {value!r}")
        return value
    return money(value, "rate")


def money(value: object, field: str) -> Decimal:
    """An exact, non-negative amount of yuan of a message, or a refusal naming its field."""
    try:
        amount = yuan(value)
    except (TypeError, ValueError) as error:
        raise Rejected("invalid", field, str(error)) from error
    if amount < 0:
        raise Rejected("invalid", field, f"an amount is not negative: {value!r}")
    return amount


def _decimal(value: object, field: str) -> Decimal:
    if isinstance(value, float | bool) or not isinstance(value, str | int | Decimal):
        raise Rejected("invalid", field, f"an exact decimal (text), never {type(value).__name__}")
    try:
        number = Decimal(value)
    except InvalidOperation as error:
        raise Rejected("invalid", field, f"not a number: {value!r}") from error
    if not number.is_finite():
        raise Rejected("invalid", field, f"not a number: {value!r}")
    return number


def _moment(value: object, field: str) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as error:
        raise Rejected("invalid", field, f"not an ISO datetime: {value!r}") from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def day(value: object, field: str) -> date:
    """An ISO date of a message, or a refusal naming its field."""
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as error:
        raise Rejected("invalid", field, f"not an ISO date: {value!r}") from error


def _span(work: WorkLogged) -> tuple[datetime, timedelta]:
    """When the work started and how long it took; refused if it ends before it starts."""
    started = _moment(work.started, "started")
    elapsed = _moment(work.ended, "ended") - started
    if elapsed < timedelta(0):
        raise Rejected("invalid", "ended", "work ends before it starts")
    return started, elapsed


def _zone(terms: Mapping[str, Any]) -> tzinfo:
    """rule C4: the agreement's time zone for calendar days; Beijing time unless it names
    another (a fixed +08:00 for Beijing: China has no summer time since 1991)."""
    name = terms.get("time_zone")
    if name is None:
        return CHINA
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise Rejected("invalid", "time_zone", f"not a time zone: {name!r}") from error


def _ceil(elapsed: timedelta, unit: timedelta) -> int:
    """Whole units, any part counting as one; integer arithmetic, no float."""
    whole, part = divmod(elapsed, unit)
    return whole + (1 if part else 0)
