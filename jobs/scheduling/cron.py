"""Every question about a job's schedule, answered by one cron engine: when it fires, which slot
a beat tick is, the next runs shown anywhere, lateness, catch-up and the schedule in words.
Beat fires Cronhouse's jobs at the slots this module gives (``next_fire``, stored as
``Job.next_fire_at``), so what is shown is what happens.

Semantics are Debian cron's (``man 5 crontab``):

* five fields, minute hour day-of-month month day-of-week; numbers, ranges (``a-b``, ``a-a``
  included), steps over ``*`` or a range (``*/15``, ``1-30/5``), lists, three-letter month and
  day names (``JAN``, ``mon-fri``), 0 or 7 for Sunday. Extensions Debian does not read
  (``L``, ``W``, ``#``, a step after a single number such as ``5/10``, a seconds field) are
  refused.
* When both day fields are restricted (neither starts with ``*``), a day matches if EITHER
  matches: ``0 9 1-7 * 1`` fires on days 1 to 7 and on every Monday. When either starts with
  ``*``, both must match.

Daylight saving, per job timezone, as Debian's cron handles it (``cron(8)``: its main loop
compares wall-clock minutes across a clock change of under three hours):

* A *fixed-time* job (neither the minute nor the hour field starts with ``*``, e.g. ``30 2 * * *``
  or ``0 9 1-7 * 1``) follows the wall clock. A time skipped when clocks go forward fires at the
  first minute after the gap (02:30 -> 03:00 the day New York springs forward); several skipped
  times of one job fire once there. A time that happens twice when clocks go back fires the
  first time only.
* A *wildcard* job (the minute or the hour field starts with ``*``, e.g. ``*/15 * * * *``,
  ``0 * * * *`` or ``* 3 * * *``) fires at every real minute whose wall-clock time matches: the
  skipped times do not fire, the repeated ones fire twice (an hourly job runs every real hour).

The engine is cronsim (the cron evaluator of healthchecks.io, which monitors cron jobs): it
implements the Debian rule for the two day fields and reads ``a-a`` ranges correctly, which
croniter and Celery's crontab do not (croniter lists ``0 9 * 12-12 *`` as every day of
January; Celery requires both day fields to match). Cronsim walks naive wall-clock times only
here; mapping each wall time to real instants by the rules above is ``_instants``, so one
piece of code decides daylight saving for every caller. Words come from cron-descriptor.
"""

from __future__ import annotations

import functools
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cron_descriptor import DescriptionTypeEnum, ExpressionDescriptor, Options
from cronsim import CronSim, CronSimError
from django.core.exceptions import ValidationError

UTC = ZoneInfo("UTC")
# Debian's cron treats a clock change under three hours as daylight saving; every real change
# of a UTC offset is within it, so walking wall time this far around an instant finds every
# wall time whose real instant could lie on the other side of it.
DST_WINDOW = timedelta(hours=3)
MINUTE = timedelta(minutes=1)
# The longest interval a job may have (one year). A longer one stored anyway (a restore, raw SQL)
# never fires and says why: its slots would be centuries apart, past what a datetime holds.
MAX_INTERVAL_SECONDS = 365 * 86400
# One term of a field as Debian's cron reads it: a value (number or name), or ``*`` or a range,
# each optionally with a step. cronsim also reads Quartz-style ``L``, ``W``, ``#`` and ``5/10``.
VALUE = r"(?:\d+|[A-Za-z]{3})"
TERM = rf"(?:(?:\*|{VALUE}-{VALUE})(?:/\d+)?|{VALUE})"
DEBIAN_FIELD = re.compile(rf"{TERM}(?:,{TERM})*")
FIELD_NAMES = ("minute", "hour", "day-of-month", "month", "day-of-week")
MONTH_NAMES = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
NAMES = {name: number for number, name in enumerate(MONTH_NAMES, 1)}
NAMES |= {name: number for number, name in enumerate("SUN MON TUE WED THU FRI SAT".split())}
STEPPED_RANGE = re.compile(r"^(\w+)-(\w+)/\d+$")
# What each field accepts (day-of-week 7 is Sunday, as 0).
FIELD_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
# The numbers of a field that name a minute, hour, day...: not the step after a ``/``.
FIELD_NUMBER = re.compile(r"(?<![/\d])\d+")


# -- validation ------------------------------------------------------------------------------


def cron_syntax_error(value: str) -> str | None:
    """Why ``value`` is not a five-field Debian cron expression, naming the field; None if it is
    one (it may still never fire: see ``validate_cron_expression``)."""
    fields = value.split()
    if len(fields) != 5:
        return f"it must have 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
    for name, field in zip(FIELD_NAMES, fields, strict=True):
        if not DEBIAN_FIELD.fullmatch(field):
            return f"bad {name} {field!r}: cron reads numbers, ranges, */steps, lists and names only"
    if out_of_range := _out_of_range(fields):
        return out_of_range
    # Any month: an expression that parses but never fires (31 February) is not a syntax error.
    try:
        CronSim(" ".join([*fields[:3], "*", fields[4]]), datetime(2000, 1, 1))
        CronSim(" ".join([fields[0], fields[1], "*", fields[3], "*"]), datetime(2000, 1, 1))
    except CronSimError as exc:
        return f"{str(exc).lower()} in {value!r}"
    return None


def _out_of_range(fields: list[str]) -> str | None:
    """``minute 61 is outside 0-59; hour 25 is outside 0-23``, or None."""
    problems = []
    for name, field, (low, high) in zip(FIELD_NAMES, fields, FIELD_RANGES, strict=True):
        for number in FIELD_NUMBER.findall(field):
            if not low <= int(number) <= high:
                problems.append(f"{name} {int(number)} is outside {low}-{high}")
                break
    return "; ".join(problems) or None


def validate_cron_expression(value: str) -> None:
    if not value:
        return
    fields = value.split()
    if len(fields) != 5:
        raise ValidationError(
            "Cron expression %(value)r must have 5 fields (minute hour day-of-month month day-of-week), got %(n)d.",
            params={"value": value, "n": len(fields)},
        )
    if error := cron_syntax_error(value):
        raise ValidationError(
            "%(value)r is not a valid cron expression (%(error)s).", params={"value": value, "error": error}
        )
    if _never_fires(value):
        raise ValidationError(
            "%(value)r never fires: day-of-month %(dom)s never falls in month %(month)s "
            "(February has at most 29 days; April, June, September and November have 30).",
            params={"value": value, "dom": fields[2], "month": fields[3]},
        )


@functools.lru_cache(maxsize=4096)
def _never_fires(value: str) -> bool:
    """Cron repeats every year at most, so one answer holds for an expression whenever asked
    (importing many jobs asks it for the same expressions again and again)."""
    return not next_run_times(value, "UTC", datetime.now(UTC), count=1)


def interval_problem(interval_seconds: int | None) -> str | None:
    """Why a stored interval never fires: outside 1 .. MAX_INTERVAL_SECONDS (None: it fires, or
    there is no interval)."""
    if interval_seconds is None or 1 <= interval_seconds <= MAX_INTERVAL_SECONDS:
        return None
    return f"interval out of range: {interval_seconds:,} s (1 to {MAX_INTERVAL_SECONDS:,}, a year)"


def schedule_problem(cron_expression: str, interval_seconds: int | None) -> str | None:
    """Why a stored schedule never fires (a restore or raw SQL can hold what forms refuse), in the
    words the form would have used; None for a schedule that fires."""
    if interval_seconds is not None and (problem := interval_problem(interval_seconds)):
        return problem
    if interval_seconds or not cron_expression:
        return None
    try:
        validate_cron_expression(cron_expression)
    except ValidationError as exc:
        return exc.messages[0]
    return None


def validate_timezone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError("%(value)r is not a known timezone (e.g. UTC, Europe/London).", params={"value": value})


def schedule_errors(cron_expression: str, timezone: str, interval_seconds: int | None) -> dict[str, str]:
    """Every check a job's schedule passes before it is stored, wherever it is edited (the job
    form, import_jobs, seed_jobs, django-celery-beat's admin, a shell ``.save()``): exactly one of
    a cron expression and an interval, Debian syntax, an expression that fires, a known timezone,
    an interval of 1 s to a year. Keyed by the field each message is about; empty when valid."""
    errors: dict[str, str] = {}
    if bool(cron_expression) == bool(interval_seconds):
        errors["cron_expression"] = "Give either a cron expression or an interval in seconds, not both."
    elif cron_expression:
        try:
            validate_cron_expression(cron_expression)
        except ValidationError as exc:
            errors["cron_expression"] = exc.messages[0]
    elif problem := interval_problem(interval_seconds):
        errors["interval_seconds"] = (
            f"An interval of more than a year ({MAX_INTERVAL_SECONDS:,} s) is not supported: "
            "use a cron expression for a job that runs more rarely."
            if interval_seconds > MAX_INTERVAL_SECONDS
            else problem
        )
    try:
        validate_timezone(timezone)
    except ValidationError as exc:
        errors["timezone"] = exc.messages[0]
    return errors


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(available_timezones())]


# -- words -----------------------------------------------------------------------------------


# Lists show many jobs that share a handful of expressions: cron-descriptor's words are made
# once per (expression, interval, zone), not once per row.
@functools.lru_cache(maxsize=4096)
def describe_schedule(cron_expression: str, interval_seconds: int | None, timezone: str = "UTC") -> str:
    if interval_seconds and interval_problem(interval_seconds):
        return f"interval out of range ({interval_seconds:,} s)"
    if interval_seconds:
        return describe_interval(interval_seconds)
    if not cron_expression:
        return "no schedule"
    try:
        words = describe_cron(cron_expression)
    except Exception:  # cron_descriptor raises several types for one meaning: unreadable
        return cron_expression
    return words if timezone == "UTC" else f"{words} ({timezone})"


def describe_cron(cron_expression: str) -> str:
    """cron-descriptor's words; when both day fields are restricted, they say that either day
    matches ("At 09:00, on day 1 through 7 of the month, or on Monday"), as cron reads it."""
    options = Options()
    options.use_24hour_time_format = True
    descriptor = ExpressionDescriptor(cron_expression, options)
    fields = cron_expression.split()
    if fields[2].startswith("*") or fields[4].startswith("*"):
        return descriptor.get_description(DescriptionTypeEnum.FULL)
    time_words = descriptor.get_description(DescriptionTypeEnum.TIMEOFDAY)
    dom = descriptor.get_description(DescriptionTypeEnum.DAYOFMONTH)
    dom = re.sub(r"between day (\S+) and (\S+) of the month", r"on day \1 through \2 of the month", dom)
    dow = descriptor.get_description(DescriptionTypeEnum.DAYOFWEEK).removeprefix(", ").removeprefix("only ")
    dow = dow if dow.startswith("on ") else f"on {dow}"
    month = descriptor.get_description(DescriptionTypeEnum.MONTH)
    return f"{time_words}{dom}, or {dow}{month}"


def describe_interval(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"Every {unit}" if count == 1 else f"Every {count} {unit}s"
    return "Every second" if seconds == 1 else f"Every {seconds} seconds"


# -- fire times ------------------------------------------------------------------------------


def _one_value_range(term: str) -> str:
    """``a-a/n`` is the one value ``a`` in cron; cronsim reads a one-value range with a step as
    ``a/n`` (every n-th value from a), so hand it the value alone."""
    match = STEPPED_RANGE.match(term)
    if match:
        start, end = (NAMES.get(part.upper(), part) for part in match.groups())
        if str(start).isdigit() and str(end).isdigit() and int(start) == int(end):
            return match.group(1)
    return term


def engine_expression(cron_expression: str) -> str:
    """The expression as handed to cronsim (same meaning, see ``_one_value_range``)."""
    return " ".join(",".join(map(_one_value_range, field.split(","))) for field in cron_expression.split())


def is_fixed_time(cron_expression: str) -> bool:
    """Debian's split for daylight saving: neither the minute nor the hour field starts with ``*``."""
    minute, hour = cron_expression.split()[:2]
    return not minute.startswith("*") and not hour.startswith("*")


def _exists(local: datetime) -> bool:
    return local.astimezone(UTC).astimezone(local.tzinfo).replace(tzinfo=None) == local.replace(tzinfo=None)


def _instants(wall: datetime, tz: ZoneInfo, fixed: bool) -> list[datetime]:
    """The real instants (UTC, ascending) at which a schedule matching the naive wall-clock time
    ``wall`` fires in ``tz``, by Debian cron's daylight-saving rules (module docstring)."""
    first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return [first.astimezone(UTC)]
    if _exists(first):  # happens twice: clocks went back
        both = [first.astimezone(UTC), second.astimezone(UTC)]
        return both[:1] if fixed else both
    if not fixed:  # skipped: clocks went forward
        return []
    while not _exists(first):  # the first minute after the gap
        wall += MINUTE
        first = wall.replace(tzinfo=tz)
    return [first.astimezone(UTC)]


def fire_times(cron_expression: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """Every fire time strictly after ``after``, ascending, as aware UTC datetimes; none for an
    expression that never fires or does not parse (a restored database may hold one: it must not
    take the pages and beat down with it).

    1. cronsim walks the matching wall-clock times from ``after``'s (from up to DST_WINDOW
       earlier when clocks go back soon: a wall time before ``after``'s then happens again after it);
    2. ``_instants`` turns each into the instants it fires at;
    3. instants wait in a heap until no later wall time can fire before them (the second pass of
       a repeated hour comes after the first pass of the whole hour).
    """
    tz = ZoneInfo(timezone)
    fixed = is_fixed_time(cron_expression)
    local = after.astimezone(tz)
    rewind = max(local.utcoffset() - (after + DST_WINDOW).astimezone(tz).utcoffset(), timedelta(0))
    try:
        walls = CronSim(engine_expression(cron_expression), local.replace(tzinfo=None) - rewind)
    except (CronSimError, ValueError, IndexError):
        return
    pending: list[datetime] = []
    last = after
    for wall in walls:
        instants = _instants(wall, tz, fixed)
        for instant in instants:
            heapq.heappush(pending, instant)
        while pending and instants and pending[0] <= instants[0]:
            instant = heapq.heappop(pending)
            if instant > last:
                last = instant
                yield instant
    yield from (instant for instant in sorted(pending) if instant > last)


def next_run_times(cron_expression: str, timezone: str, after: datetime, count: int = 5) -> list[datetime]:
    """The next ``count`` fire times strictly after ``after``, as aware UTC datetimes; fewer (none)
    for an expression that never fires (``0 0 31 2 *``)."""
    times = []
    for instant in fire_times(cron_expression, timezone, after):
        if len(times) == count:
            break
        times.append(instant)
    return times


def previous_run_time(cron_expression: str, timezone: str, at: datetime) -> datetime | None:
    """The latest fire time at or before ``at`` (the slot a tick at ``at`` belongs to); None for
    an expression that never fires.

    cronsim walks wall-clock times backwards from ``at``'s (from up to DST_WINDOW later when clocks
    went back shortly before: those wall times first happened before ``at``); for each, the
    forward walk of ``fire_times`` from its first instant decides, so both directions agree.
    """
    tz = ZoneInfo(timezone)
    fixed = is_fixed_time(cron_expression)
    local = at.astimezone(tz)
    ahead = max((at - DST_WINDOW).astimezone(tz).utcoffset() - local.utcoffset(), timedelta(0))
    try:
        start = local.replace(tzinfo=None) + ahead + timedelta(seconds=1)
        walls = CronSim(engine_expression(cron_expression), start, reverse=True)
    except (CronSimError, ValueError, IndexError):
        return None
    for wall in walls:
        instants = _instants(wall, tz, fixed)
        if not instants:
            continue
        best = None
        for instant in fire_times(cron_expression, timezone, instants[0] - timedelta(microseconds=1)):
            if instant > at:
                break
            best = instant
        if best is not None:
            return best
    return None


def interval_slot(interval_seconds: int, at: datetime) -> datetime:
    """Interval schedules are aligned to the Unix epoch so every beat names the same slot (callers
    check ``interval_problem`` first: an interval out of range has no slots)."""
    epoch_seconds = int(at.timestamp())
    return datetime.fromtimestamp(epoch_seconds - epoch_seconds % interval_seconds, tz=UTC)


def last_slot(cron_expression: str, interval_seconds: int | None, timezone: str, at: datetime) -> datetime | None:
    """The latest fire time at or before ``at`` (None without a schedule, or one that never fires)."""
    if interval_seconds:
        return None if interval_problem(interval_seconds) else interval_slot(interval_seconds, at)
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
    if interval_seconds and interval_problem(interval_seconds):
        return []
    if interval_seconds:
        first = interval_slot(interval_seconds, after) + timedelta(seconds=interval_seconds)
        return [first + timedelta(seconds=interval_seconds * i) for i in range(count)]
    if not cron_expression:
        return []
    return next_run_times(cron_expression, timezone, after, count)


# -- what beat stores per job ----------------------------------------------------------------

# A slot with no recorded run this long after it (when the job sets no grace of its own) makes
# the job late: a tenth of the schedule's period, at least a minute and at most an hour.
MIN_GRACE = timedelta(seconds=60)
MAX_DEFAULT_GRACE = timedelta(hours=1)
GRACE_FRACTION = 0.1


@dataclass(frozen=True)
class NextFire:
    """A job's next slot after a moment, and when that slot counts as missed if nothing was
    recorded for it. Both None for a schedule that never fires (or no schedule)."""

    at: datetime | None
    late_at: datetime | None


def next_fire(
    cron_expression: str, interval_seconds: int | None, timezone: str, after: datetime, grace_seconds: int | None = None
) -> NextFire:
    """The slot beat fires next strictly after ``after`` (stored as ``Job.next_fire_at``), and its
    lateness deadline: the job's ``grace_seconds``, or by default a tenth of the time to the slot
    after it, clamped to [MIN_GRACE, MAX_DEFAULT_GRACE]."""
    times = upcoming_runs(cron_expression, interval_seconds, timezone, after, count=2)
    if not times:
        return NextFire(None, None)
    if grace_seconds is not None:
        # Clamped: a grace stored out of range (raw SQL) must not overflow the date it is added to.
        grace = timedelta(seconds=min(max(grace_seconds, 0), MAX_INTERVAL_SECONDS))
    elif len(times) == 2:
        grace = min(max((times[1] - times[0]) * GRACE_FRACTION, MIN_GRACE), MAX_DEFAULT_GRACE)
    else:
        grace = MIN_GRACE
    return NextFire(times[0], times[0] + grace)
