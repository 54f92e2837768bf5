"""What a command or query may say: one pydantic schema per body, defined once here.

The gateway validates HTTP bodies with these and writes its OpenAPI from them; the
services decode their NATS requests with the same classes (the gateway cannot import a
service, so the schemas live in the shared kit). Unknown fields are refused, so a typo
in a field name is an error that names it rather than a silent default.

The services still check the meaning (they are the authority: a site exists, a visit is
assigned to this technician); these schemas check the shape."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from weibao.shared.paging import DEFAULT_LIMIT

ID_PATTERN = r"^[A-Za-z0-9_.:\-]+$"
Id = Field(min_length=1, max_length=100, pattern=ID_PATTERN)
MaybeId = Field(default=None, min_length=1, max_length=100, pattern=ID_PATTERN)  # a reference that may be left out
Text = Field(default="", max_length=2000)
Money = Field(gt=0, max_digits=14, decimal_places=2)

# The years a date or time may fall in: the services add terms, warranties and SLA clocks
# to the dates they are given (years and days), and Python's dates end at 9999-12-31 and
# begin at 0001-01-01, so a date at either end overflows there; no agreement of this
# business lies outside these years.
FIRST_YEAR, LAST_YEAR = 1900, 2199
When = TypeVar("When", bound=date)  # a datetime is a date too


def in_years(value: When) -> When:
    """A date or time within FIRST_YEAR..LAST_YEAR; pydantic names the field when refused."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"a year from {FIRST_YEAR} to {LAST_YEAR}")
    return value


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*")
    @classmethod
    def _years(cls, value: object) -> object:
        # Every date and time of every body within the years the services compute with
        # (9999-12-31 plus a term overflows there): a 422 naming the field, not a 502.
        return in_years(value) if isinstance(value, date) else value


class Point(Body):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


def aware(value: datetime | None) -> datetime | None:
    """A phone's or clerk's time without its UTC offset is ambiguous by eight hours."""
    if value is not None and value.tzinfo is None:
        raise ValueError("a time with its UTC offset, e.g. 2026-11-24T09:30:00+08:00")
    return value


def _no_bool(value: object) -> object:
    # pydantic reads JSON's true as 1: a page size of "true" is a mistake to name, not a 1.
    if isinstance(value, bool):
        raise ValueError("a whole number")
    return value


Whole = Annotated[int, BeforeValidator(_no_bool)]


class Paging(Body):
    """A query's page: the ranges of `limit` and `offset` are the kit's paging convention
    (weibao.shared.paging.Page.of checks them where the query pages, with its refusals)."""

    limit: Whole = DEFAULT_LIMIT
    offset: Whole = 0


__all__ = ["FIRST_YEAR", "LAST_YEAR", "Body", "Decimal", "Id", "MaybeId", "Money", "Paging", "Point", "Text", "Whole",
           "aware", "in_years"]
