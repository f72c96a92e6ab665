"""Billing periods are calendar months, named by their first day."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from django.utils import timezone


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def days_in_month(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def previous_month(day: date) -> date:
    return month_start(month_start(day) - timedelta(days=1))


def next_month(day: date) -> date:
    return month_end(day) + timedelta(days=1)


def month_label(period: date) -> str:
    return period.strftime("%B %Y")


def due_date(period: date, due_day: int) -> date:
    """The due day in that month, clamped to its last day (due day 31 in February is the 28th/29th)."""
    return period.replace(day=min(due_day, days_in_month(period)))


def local_date(now: datetime) -> date:
    """The business day of an instant, in the project's time zone (UTC unless configured)."""
    return timezone.localtime(now).date()


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day as aware datetimes in the project's time zone."""
    start = timezone.make_aware(datetime(day.year, day.month, day.day))
    return start, start + timedelta(days=1)
