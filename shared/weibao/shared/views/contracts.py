"""What the contracts service's queries answer (issue 12, item 4): customers and their
sites, agreements with their terms and standing (C1, C2), the templates they are signed
from, coverage verdicts and their SLA (C3-C17, D1, D2), free quotas (C7, C10) and vendor
hardware's warranty (C11, C18, C19, C21-C24).

Dates are `YYYY-MM-DD` (the agreement's own calendar days), amounts of yuan exact
decimal text (`"12000.00"`, rule B8). An agreement's terms are one fixed set whatever its
template (contracts' domain/terms.py): a template fills some of them from the signature
(its `parameters`, dotted paths into the terms) and fixes the rest."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from weibao.shared.commands.contracts import AgreementStatus, QuotaKind
from weibao.shared.geo import Precision
from weibao.shared.public.dispatch import Channel
from weibao.shared.views import Listing, View

Verdict = Literal["covered", "billable", "excluded"]  # what coverage says of a service (C1)
Calendar = Literal["clock", "working"]  # rule D2: every hour counts, or working time only
# What is charged on top of a verdict: expenses at cost (C5), the hardware day rate (C4),
# the quota ledger's decision (C7, C10), the workload (C8), a warranty's fixed fee (C18).
Charge = Literal["expenses", "day_rate", "quota", "workload", "fee"]
Clock = Literal["respond", "arrive", "resolve"]  # the deadline clocks a priority target may set (issue 13)
Period = Literal["free", "paid", "none"]  # which period covers a day (C1, C2)
# What the warranty gives for a fault (C11, C18, C19, C21-C23).
Remedy = Literal["return_exchange_or_repair", "exchange_or_repair", "free_replacement", "repair",
                 "restore_software", "paid_replacement", "not_covered"]
OnsiteKind = Literal["local_or_out_of_town", "by_phase", "respond_resolve", "by_arrangement"]
# Two dates, first and last day of a period, both included.
DateSpan = Annotated[list[date], Field(min_length=2, max_length=2)]
Hours = Annotated[list[str], Field(min_length=2, max_length=2)]  # opening and closing, HH:MM


# -- customers and sites ---------------------------------------------------------------


class CustomerContact(View):
    name: str = Field(description="the contact person")
    phone: str = Field(description="their phone number; empty if not given")
    email: str = Field(description="their email address; empty if not given")
    qq: str = Field(description="their QQ number (C13); empty if not given")


class SiteLocation(View):
    address: str = Field(description="the site's address as entered")
    latitude: float = Field(description="degrees north (WGS-84)")
    longitude: float = Field(description="degrees east (WGS-84)")
    city_code: str | None = Field(description="the city's administrative code; null if the address named none")
    province: str | None = Field(description="the province, read from the address; null if unknown")
    city: str | None = Field(description="the city, read from the address; null if unknown")
    district: str | None = Field(description="the district, read from the address; null if unknown")
    precision: Precision = Field(description="how exactly the point is known: exact coordinates, the address, "
                                             "or only its district, city or province")


class CustomerSite(View):
    site_id: str = Field(description="the site's id")
    name: str = Field(description="the site's name")
    location: SiteLocation = Field(description="where the site is, where technicians go (C9, D4)")


class Customer(View):
    """A customer as registered, with its contacts and sites (each with its location)."""

    customer_id: str = Field(description="the customer's id")
    name: str = Field(description="the customer's name")
    contacts: list[CustomerContact] = Field(description="the people to call")
    sites: list[CustomerSite] = Field(description="the customer's sites, in the order they were added")


class DirectorySite(View):
    """A site as the customer directory lists it: where it is, flat."""

    site_id: str = Field(description="the site's id")
    name: str = Field(description="the site's name")
    address: str = Field(description="the site's address")
    latitude: float = Field(description="degrees north (WGS-84)")
    longitude: float = Field(description="degrees east (WGS-84)")
    city: str | None = Field(description="the city, read from the address; null if unknown")
    city_code: str | None = Field(description="the city's administrative code; null if unknown")


class CustomerListed(View):
    """A customer in the directory's list, with its sites."""

    customer_id: str = Field(description="the customer's id")
    name: str = Field(description="the customer's name")
    sites: list[DirectorySite] = Field(description="the customer's sites, in the order they were added")


class CustomerCard(CustomerListed):
    """A customer on its page: the directory's entry with its contacts."""

    contacts: list[CustomerContact] = Field(description="the people to call")


# -- agreements' terms (contracts' domain/terms.py) -----------------------------------


class TargetHours(View):
    respond_hours: int | None = Field(description="respond within this many hours; null: as the clauses say")
    arrive_hours: int | None = Field(description="be on site within this many hours; null: as the clauses say")
    resolve_hours: int | None = Field(description="resolve within this many hours; null: as the clauses say")


class TargetsByPriority(View):
    urgent: TargetHours | None = Field(description="an urgent request's targets; null: the clauses' deadlines")
    high: TargetHours | None = Field(description="a high-priority request's targets; null: the clauses' deadlines")
    normal: TargetHours | None = Field(description="a normal request's targets; null: the clauses' deadlines")
    low: TargetHours | None = Field(description="a low-priority request's targets; null: the clauses' deadlines")


class OnsiteTerms(View):
    """How fast someone must be on site (D1) and how the clock counts (D2)."""

    kind: OnsiteKind = Field(description="which kind of deadline: local or out of town (C9), by project phase "
                                         "(C14), respond and resolve (C15), or by arrangement")
    local_hours: int | None = Field(description="on site within this many hours at a local site (C9)")
    out_of_town_days: int | None = Field(description="on site within this many days out of town (C9)")
    local_radius_km: float | None = Field(description="a site this close to the office counts as local (D1)")
    parallel_run_days: int | None = Field(description="on site within this many days during the parallel run (C14)")
    cutover_days: int | None = Field(description="on site within this many days after cutover (C14)")
    respond_hours: int | None = Field(description="respond within this many hours (C15)")
    resolve_hours: int | None = Field(description="resolve within this many hours (C15)")
    phone_support_24h: bool = Field(description="phone requests are answered around the clock (C16)")
    service_hours: Hours | None = Field(description="the desk's opening and closing times, HH:MM in the office's "
                                                    "local time (C20); null: 09:00 to 18:00")
    calendar: Calendar = Field(description="whether deadlines count every hour or working time only (D2)")
    service_days: list[int] = Field(description="the ISO weekdays served, 1 = Monday to 7 = Sunday (C20)")
    geofence_m: int | None = Field(description="the check-in radius in metres (D5); null: the service's default")
    priority_targets: TargetsByPriority | None = Field(description="targets by priority (issue 13); null: none")


class FeeTerms(View):
    """rule C2: the annual maintenance fee."""

    percent: Decimal = Field(description="the fee, a percentage of the software's price per year")
    licence_price: Decimal = Field(description="the software's price in yuan")
    period_months: int = Field(description="the months one fee pays for")
    notice_days: int = Field(description="the fee falls due this many days before coverage ends (B4)")


class ScopeTerms(View):
    covered_causes: list[str] = Field(description="the causes maintenance covers (C12)")
    not_liable_causes: list[str] = Field(description="the causes the vendor is not liable for: billable, "
                                                     "no penalty (C17)")
    third_party_hardware: Literal["excluded", "billable"] = Field(
        description="whether work on hardware the vendor did not supply is refused or billed (C3)")


class HardwareTerms(View):
    """rule C4: hardware and network work on request."""

    day_rate: Decimal = Field(description="yuan per day, part-days rounded up")


class RateTerms(View):
    """rules B3, C1, B6: the rates for service outside coverage."""

    hourly_rate: Decimal | None = Field(description="yuan per started hour; null: to be agreed")
    day_rate: Decimal | None = Field(description="yuan per started day, and per day of a large change's "
                                                 "workload (C8); null: to be agreed")


class TrainingTerms(View):
    """rule C7."""

    free_seats: int = Field(description="free training seats")
    free_sessions: int = Field(description="free on-site training sessions")
    paid_up_discount_percent: Decimal = Field(description="the discount on billable training for a customer "
                                                          "whose fee is paid, in percent")
    basic_computer_training_free: bool = Field(description="basic computer training is free too")


class InstallationTerms(View):
    """rule C10."""

    free: int = Field(description="free installations")
    reinstall_policy: Literal["free_if_os_sound", "charged"] = Field(
        description="a reinstallation is free when the operating system is sound, or always charged")


class ChangeTerms(View):
    """rule C8."""

    free_up_to_working_days: int | None = Field(description="changes up to this many working days are free; "
                                                            "null: no threshold")


class WarrantyTerms(View):
    hardware_months: int = Field(description="months of hardware warranty (C11)")
    dongle_months: int | None = Field(description="months of a dongle's warranty (C18); null: not set")
    dongle_replacement_fee: Decimal | None = Field(description="yuan for a dongle replaced after its warranty "
                                                               "(C18); null: none set")
    three_guarantees: bool = Field(description="the three guarantees (三包) apply (C19)")
    preinstalled_software_months: int | None = Field(description="months preinstalled software is guaranteed "
                                                                 "(C21); null: not set")


class AgreementTerms(View):
    """An agreement's terms: the template's, with the signature's parameters filled in."""

    onsite: OnsiteTerms = Field(description="on-site deadlines and how they count (C9, C14-C16, C20, D1, D2)")
    free_months: int = Field(description="months of free service after go-live (C1)")
    fee: FeeTerms | None = Field(description="the annual fee (C2); null: no paid maintenance after the free months")
    scope: ScopeTerms = Field(description="what maintenance covers and what not (C3, C12, C17)")
    hardware: HardwareTerms | None = Field(description="hardware and network work (C4); null: not offered")
    service: RateTerms | None = Field(description="rates outside coverage (B3, C1); null: none set")
    customer_pays_expenses: bool = Field(description="the customer pays on-site travel expenses (C5)")
    upgrades_free_in_service: bool = Field(description="upgrades are free while covered (C6)")
    training: TrainingTerms = Field(description="free training (C7)")
    installation: InstallationTerms = Field(description="free installations (C10)")
    changes: ChangeTerms = Field(description="free small changes (C8)")
    warranty: WarrantyTerms | None = Field(description="vendor hardware's warranty; null: none in this agreement")
    billing_period: Literal["monthly", "per_visit"] = Field(description="billed monthly or per visit")
    channels: list[Channel] = Field(description="how the customer may reach the vendor (C13)")


class AgreementTemplate(View):
    id: str = Field(description="the template's id, used when signing")
    name: str = Field(description="the kind of agreement, by name")
    parameters: list[str] = Field(description="the terms each signature must give, as dotted paths into the "
                                              "terms (`fee.percent`)")
    description: str = Field(description="what the template is for; empty if none")


# -- agreements --------------------------------------------------------------------------


class AgreementStanding(View):
    agreement_id: str = Field(description="the agreement's id")
    status: AgreementStatus = Field(description="active (signed and not ended) or terminated; a lapse is "
                                                "`lapsed_on`, not a status")
    template_id: str = Field(description="the template it was signed from")
    go_live: date = Field(description="the day the software went live: free service starts (C1)")
    free_until: date = Field(description="the last day of free service (C1)")
    covered_until: date = Field(description="the last day covered, free or paid (C1, C2)")
    lapsed_on: date | None = Field(description="the first day without coverage, a period having ended unpaid; "
                                               "null: not lapsed")


class AgreementListed(AgreementStanding):
    """An agreement in the register's list."""

    customer_id: str = Field(description="the customer's id")
    template_name: str = Field(description="the template's name")
    terminated_on: date | None = Field(description="the day it ended; null: not terminated")
    site_ids: list[str] = Field(description="the sites it covers")


class Amendment(View):
    """New terms agreed after signing, in force from their day (an amendment is a new
    event, never an edit of the signed terms)."""

    effective_on: date = Field(description="the first day the new terms apply")
    reason: str = Field(description="why the terms changed, as recorded")
    terms: AgreementTerms = Field(description="the whole terms in force from that day")


class Agreement(AgreementStanding):
    """An agreement with its terms, now or as it stood at a past instant."""

    version: int = Field(ge=0, description="how many events the agreement has had: its version")
    customer_id: str = Field(description="the customer's id")
    terminated_on: date | None = Field(description="the day it ended; null: not terminated")
    paid_periods: list[DateSpan] = Field(description="the periods paid for (C2), first and last day")
    terms: AgreementTerms = Field(description="the terms as signed")
    amendments: list[Amendment] = Field(description="every amendment, in the order agreed: on a day, the last "
                                                    "one effective by then applies, else the terms as signed")


class ServiceLevel(View):
    """D1: how soon someone must respond, be on site and resolve; D2: how the clock counts."""

    respond_within_hours: int | None = Field(description="respond within this many hours; null: no such clock")
    arrive_within_hours: int | None = Field(description="on site within this many hours; null: not in hours")
    arrive_within_days: int | None = Field(description="on site within this many days; null: not in days")
    resolve_within_hours: int | None = Field(description="resolve within this many hours; null: no such clock")
    calendar: Calendar = Field(description="whether the clocks count every hour or working time only (D2)")
    service_hours: Hours | None = Field(description="the desk's opening and closing times, HH:MM (C20); "
                                                    "null: the default")
    phone_support_24h: bool = Field(description="phone requests are answered around the clock (C16)")
    clauses: list[str] = Field(description="the rules the deadlines come from")
    service_days: list[int] = Field(description="the ISO weekdays served, 1 = Monday (C20)")
    respond_around_the_clock: bool = Field(description="this request's respond clock counts every hour (C16)")
    set_by_priority: list[Clock] = Field(description="the clocks the request's priority set or tightened (issue 13)")


class CoverageVerdict(View):
    """Is a service covered, billable or excluded, why, and under which deadlines."""

    verdict: Verdict = Field(description="covered, billable or excluded")
    clauses: list[str] = Field(description="the rules the verdict rests on")
    reason: str = Field(description="why, in English")
    sla: ServiceLevel | None = Field(description="the deadlines that apply; null: none (by arrangement, or "
                                                 "not an on-site service)")
    charges: list[Charge] = Field(description="what is charged on top of the verdict")
    penalty_applies: bool = Field(description="a missed deadline carries a penalty (not for C17 causes)")


class CoverageToday(CoverageVerdict):
    """The coverage of a fault on site today (a local site, C9)."""

    on: date = Field(description="today, in China")
    period: Period = Field(description="the period covering today: free (C1), paid (C2) or none")


class QuotaBalance(View):
    """A free quota's balance (C7, C10)."""

    agreement_id: str = Field(description="the agreement's id")
    kind: QuotaKind = Field(description="installations, training seats or on-site training sessions")
    free_total: int = Field(description="free units the agreement grants")
    reserved: int = Field(description="free units held by reservations")
    consumed_free: int = Field(description="free units used")
    lapsed: int = Field(description="free units expired unused")
    available: int = Field(description="free units left to reserve or use")


class AgreementCard(AgreementStanding):
    """An agreement on its customer's page: its standing, today's coverage and quotas."""

    version: int = Field(ge=0, description="how many events the agreement has had: its version")
    paid_periods: list[DateSpan] = Field(description="the periods paid for (C2), first and last day")
    customer_id: str = Field(description="the customer's id")
    template_name: str = Field(description="the template's name")
    site_ids: list[str] = Field(description="the sites it covers")
    coverage: CoverageToday = Field(description="what a fault on site today would be")
    quotas: list[QuotaBalance] = Field(description="the free quotas' balances; none for a terminated agreement")


class CustomerOverview(View):
    """The dispatcher's customer page in one answer."""

    customer: CustomerCard = Field(description="the customer, its contacts and sites")
    agreements: list[AgreementCard] = Field(description="its agreements, by id")


# -- vendor hardware's warranty ------------------------------------------------------------


class WarrantyVerdict(View):
    """What the warranty says about a fault of vendor-supplied hardware."""

    remedy: Remedy = Field(description="what the customer gets: a return, an exchange, a repair, a replacement, "
                                       "restored software, or nothing under warranty")
    covered: bool = Field(description="the customer pays nothing for the remedy")
    clauses: list[str] = Field(description="the rules that decided it")
    warranty_until: date = Field(description="the last day of the warranty of the unit (or the part asked about)")
    reason: str = Field(description="why, in English")
    amount: Decimal | None = Field(description="yuan the customer pays, when the agreement fixes it (C18); "
                                               "null: nothing fixed")


CustomerPage = Listing[CustomerListed]
AgreementPage = Listing[AgreementListed]

