"""How every page shows a moment, a duration and a JSON value: one format each, so the dashboard,
job, run, failures, backfill and schedule pages (and the admin) read alike.

Moments are shown in the site's ``TIME_ZONE`` and name it (``2026-12-02 14:03:22 UTC``): a page
read in another zone cannot be mistaken. Calendar days read ``2026-07-01``. Durations pick the unit a
reader takes in at a glance (``53 ms``, ``4.2 s``, ``3 min 05 s``, ``1 h 02 min``)."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.dateparse import parse_datetime

NONE = "-"
# Django date-format strings of the one format (django.utils.dateformat).
DATETIME_FORMAT = "Y-m-d H:i:s T"
DATE_FORMAT = "Y-m-d"


def format_datetime(value: datetime | str | None) -> str:
    """``2026-12-02 14:03:22 UTC``, in the site's time zone; an ISO string (a run's ``as_of``) too."""
    if isinstance(value, str):
        value = parse_datetime(value)
    if value is None:
        return NONE
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return date_format(timezone.localtime(value), DATETIME_FORMAT)


def format_date(value: date | None) -> str:
    """``2026-07-01``: a calendar day (a ledger's posting date, a statement's period)."""
    if value is None:
        return NONE
    return date_format(value, DATE_FORMAT)


def format_time_of_day(value: datetime) -> str:
    """``14:03:22 UTC``: when a page was last updated."""
    return date_format(timezone.localtime(value), "H:i:s T")


def format_duration(value: float | timedelta | None) -> str:
    """``53 ms``, ``4.2 s``, ``3 min 05 s``, ``1 h 02 min``; each unit's rounding may carry into the next."""
    if value is None:
        return NONE
    total = max(0.0, value.total_seconds() if isinstance(value, timedelta) else float(value))
    if round(total * 1000) < 1000:
        return f"{round(total * 1000)} ms"
    if round(total, 1) < 60:
        return f"{total:.1f} s"
    if round(total) < 3600:
        minutes, seconds = divmod(round(total), 60)
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(round(total / 60), 60)
    return f"{hours} h {minutes:02d} min"


def format_json(value) -> str:
    """A summary or option as indented JSON (never a Python repr); what JSON cannot hold, as text."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def one_line(text: str, limit: int = 200) -> str:
    """The first non-blank line of ``text``, cut to ``limit`` characters with an ellipsis."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"
