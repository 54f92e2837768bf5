"""Money: Chinese yuan in exact decimals, rounded to the fen (rule B8).

Never floats. Amounts travel as strings ("1234.50") so no JSON reader turns them into
binary fractions. Rounding is half-up to the fen, as Chinese invoices do."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

FEN = Decimal("0.01")


def yuan(value: object) -> Decimal:
    """Parse an amount; floats are refused because they are already inexact."""
    if isinstance(value, float) or not isinstance(value, str | int | Decimal):
        raise TypeError(f"money is a string, int or Decimal, never {type(value).__name__}; e.g. '12.30'")
    try:
        amount = Decimal(value)
    except InvalidOperation as error:
        raise ValueError(f"not an amount of yuan: {value!r}") from error
    if not amount.is_finite():
        raise ValueError(f"not an amount of yuan: {value!r}")
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def to_fen(amount: Decimal) -> Decimal:
    return amount.quantize(FEN, rounding=ROUND_HALF_UP)


def percent_of(amount: Decimal, percent: Decimal) -> Decimal:
    """`percent` % of `amount`, rounded once at the end."""
    return to_fen(amount * percent / Decimal(100))


def as_text(amount: Decimal) -> str:
    return str(to_fen(amount))
