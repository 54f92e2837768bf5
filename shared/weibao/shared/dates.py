"""Calendar arithmetic the agreements need, pure."""

from __future__ import annotations

import calendar
from datetime import date


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to that month's end (31 Jan + 1 = 28/29 Feb):
    how agreements count periods 'from month to month' (rule C2) and warranties (C11)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))
