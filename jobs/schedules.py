"""Cron parsing, description and next-run times, always in the job's own timezone.

croniter does the calendar arithmetic on timezone-aware datetimes, so a 09:00 job in
America/New_York is 14:00 UTC in winter and 13:00 UTC in summer. One rule is ours: when
clocks fall back, a wall-clock time that happens twice fires once (the first time) unless
the hour field is a wildcard, so a daily 01:30 job does not run twice while an hourly job
still runs every real hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cron_descriptor import Options, get_description
from croniter import CroniterBadDateError, croniter
from django.core.exceptions import ValidationError

UTC = ZoneInfo("UTC")
# Beat may wake a few milliseconds before the slot it is firing; look this far ahead when
# asking "which slot is this tick for?".
SLOT_TOLERANCE = timedelta(seconds=2)


def validate_cron_expression(value: str) -> None:
    if not value:
        return
    fields = value.split()
    if len(fields) != 5:
        raise ValidationError(
            "Cron expression %(value)r must have 5 fields (minute hour day-of-month month day-of-week), got %(n)d.",
            params={"value": value, "n": len(fields)},
        )
    if not croniter.is_valid(value):
        raise ValidationError("%(value)r is not a valid cron expression.", params={"value": value})
    if not next_run_times(value, "UTC", datetime.now(UTC), count=1):
        raise ValidationError(
            "%(value)r never fires: day-of-month %(dom)s never falls in month %(month)s "
            "(February has at most 29 days; April, June, September and November have 30).",
            params={"value": value, "dom": fields[2], "month": fields[3]},
        )


def validate_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("%(value)r is not a known timezone (e.g. UTC, Europe/London).", params={"value": value})


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(available_timezones())]


def describe_schedule(cron_expression: str, interval_seconds: int | None, timezone: str = "UTC") -> str:
    if interval_seconds:
        return describe_interval(interval_seconds)
    if not cron_expression:
        return "no schedule"
    options = Options()
    options.use_24hour_time_format = True
    try:
        words = get_description(cron_expression, options)
    except Exception:  # cron_descriptor raises several types for one meaning: unreadable
        return cron_expression
    return words if timezone == "UTC" else f"{words} ({timezone})"


def describe_interval(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    return "Every second" if seconds == 1 else f"Every {seconds} seconds"


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    """The instant in ``tz`` with a truthful ``fold``: croniter sets fold=1 on times that are
    not ambiguous at all, so re-derive it from the UTC instant."""
    return datetime.fromtimestamp(moment.timestamp(), tz)


def _is_repeated_wall_time(moment: datetime, cron_expression: str) -> bool:
    """The second occurrence of a wall time repeated when clocks fell back."""
    hour_field = cron_expression.split()[1]
    return moment.fold == 1 and "*" not in hour_field


def next_run_times(cron_expression: str, timezone: str, after: datetime, count: int = 5) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, as aware UTC datetimes; fewer (none)
    for an expression that never fires (``0 0 31 2 *``), which the form refuses but a restored
    database may still hold: it must not take the pages and beat down with it."""
    tz = ZoneInfo(timezone)
    iterator = croniter(cron_expression, after.astimezone(tz))
    times: list[datetime] = []
    while len(times) < count:
        try:
            local = _local(iterator.get_next(datetime), tz)
        except CroniterBadDateError:
            break
        if not _is_repeated_wall_time(local, cron_expression):
            times.append(local.astimezone(UTC))
    return times


def previous_run_time(cron_expression: str, timezone: str, at: datetime) -> datetime | None:
    """The latest fire time at or before ``at`` (the slot a tick at ``at`` belongs to); None for
    an expression that never fires."""
    tz = ZoneInfo(timezone)
    iterator = croniter(cron_expression, at.astimezone(tz) + timedelta(microseconds=1))
    while True:
        try:
            local = _local(iterator.get_prev(datetime), tz)
        except CroniterBadDateError:
            return None
        if not _is_repeated_wall_time(local, cron_expression):
            break
    slot = local.astimezone(UTC)
    # croniter steps back over a repeated hour as if it were one; walking forward with the
    # same rules as next_run_times finds a later slot it skipped (an hourly job's second 01:00).
    for later in next_run_times(cron_expression, timezone, slot, count=2):
        if later > at:
            break
        slot = later
    return slot


def interval_slot(interval_seconds: int, at: datetime) -> datetime:
    """Interval schedules are aligned to the Unix epoch so every beat names the same slot."""
    epoch_seconds = int(at.timestamp())
    return datetime.fromtimestamp(epoch_seconds - epoch_seconds % interval_seconds, tz=UTC)


def slot_for_tick(
    cron_expression: str, interval_seconds: int | None, timezone: str, fired_at: datetime
) -> datetime | None:
    if interval_seconds:
        return interval_slot(interval_seconds, fired_at + SLOT_TOLERANCE)
    return previous_run_time(cron_expression, timezone, fired_at + SLOT_TOLERANCE)


def last_slot(cron_expression: str, interval_seconds: int | None, timezone: str, at: datetime) -> datetime | None:
    """The latest fire time at or before ``at`` (None without a schedule)."""
    if interval_seconds:
        return interval_slot(interval_seconds, at)
    if cron_expression:
        return previous_run_time(cron_expression, timezone, at)
    return None


def recent_slots(
    cron_expression: str, interval_seconds: int | None, timezone: str, at: datetime, count: int
) -> list[datetime]:
    """The ``count`` latest fire times at or before ``at``, oldest first."""
    slots: list[datetime] = []
    moment = at
    while len(slots) < count:
        slot = last_slot(cron_expression, interval_seconds, timezone, moment)
        if slot is None:
            break
        slots.append(slot)
        moment = slot - timedelta(microseconds=1)
    return slots[::-1]


def upcoming_runs(
    cron_expression: str, interval_seconds: int | None, timezone: str, after: datetime, count: int = 5
) -> list[datetime]:
    if interval_seconds:
        first = interval_slot(interval_seconds, after) + timedelta(seconds=interval_seconds)
        return [first + timedelta(seconds=interval_seconds * i) for i in range(count)]
    return next_run_times(cron_expression, timezone, after, count)
