"""The cron engine (jobs/scheduling/cron.py) against an independent implementation of Debian's cron
written here: a field parser, a day matcher with the rule for the two day fields, and, around
clock changes, a simulation of cron(8)'s main loop (it compares the wall-clock minute it runs in
with the one it ran last: forward by 6 min to 3 h, it runs wildcard jobs for the new minute and
fixed-time jobs for every minute skipped; backward by under 3 h, only wildcard jobs)."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.scheduling.cron import next_run_times, previous_run_time

# Pure computation: the same on either database, so the suite runs it once.
pytestmark = pytest.mark.nodb

ZONES = [
    "UTC",
    "Europe/London",
    "America/New_York",
    "Australia/Sydney",  # southern: clocks go forward in October
    "Asia/Kolkata",  # +05:30
    "Australia/Adelaide",  # +09:30 / +10:30, southern
    "America/Havana",  # clocks change at midnight
    "America/Santiago",  # southern, clocks change at midnight
    "Australia/Lord_Howe",  # a 30-minute daylight-saving shift
]
SPAN_START = datetime(2026, 1, 1, tzinfo=UTC)
SPAN_END = datetime(2028, 1, 1, tzinfo=UTC)
MONTHS = "jan feb mar apr may jun jul aug sep oct nov dec".split()
DAYS = "sun mon tue wed thu fri sat".split()
HORIZON_YEARS = 8  # a rare schedule (29 February) is compared over this many years
LIMITS = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]


# -- the independent implementation --------------------------------------------------------


def parse_field(text: str, low: int, high: int, names: list[str], first: int) -> set[int]:
    def number(token: str) -> int:
        return names.index(token.lower()) + first if token.isalpha() else int(token)

    values: set[int] = set()
    for term in text.split(","):
        span, _, step = term.partition("/")
        if span == "*":
            start, end = low, high
        elif "-" in span:
            start, end = (number(part) for part in span.split("-"))
        else:
            start = end = number(span)
        values.update(range(start, end + 1, int(step or 1)))
    return values


class DebianCron:
    def __init__(self, expression: str) -> None:
        minute, hour, dom, month, dow = expression.split()
        self.minutes = sorted(parse_field(minute, 0, 59, [], 0))
        self.hours = sorted(parse_field(hour, 0, 23, [], 0))
        self.doms = parse_field(dom, 1, 31, [], 1)
        self.months = parse_field(month, 1, 12, MONTHS, 1)
        self.dows = {day % 7 for day in parse_field(dow, 0, 7, DAYS, 0)}
        self.either_day = not dom.startswith("*") and not dow.startswith("*")
        self.wildcard = minute.startswith("*") or hour.startswith("*")

    def day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_dom, by_dow = day.day in self.doms, day.isoweekday() % 7 in self.dows
        return (by_dom or by_dow) if self.either_day else (by_dom and by_dow)

    def matches(self, wall: datetime) -> bool:
        return wall.minute in self.minutes and wall.hour in self.hours and self.day_matches(wall.date())


def offsets_change(tz: ZoneInfo, start: datetime, end: datetime) -> bool:
    probe, offset = start, start.astimezone(tz).utcoffset()
    while probe <= end:
        if probe.astimezone(tz).utcoffset() != offset:
            return True
        probe += timedelta(hours=1)
    return False


def simulate_cron_loop(cron: DebianCron, tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """cron(8)'s main loop, one real minute at a time from ``start`` (UTC) to ``end``."""
    fired = []

    def wall(instant: datetime) -> datetime:
        return instant.astimezone(tz).replace(tzinfo=None)

    virtual = wall(start - timedelta(minutes=1))
    moment = start
    while moment < end:
        running = wall(moment)
        diff = round((running - virtual).total_seconds() / 60)
        if 0 < diff <= 5:  # on time (or woke a little late): every job, each minute
            runs = any(cron.matches(virtual + timedelta(minutes=k)) for k in range(1, diff + 1))
            virtual = running
        elif 5 < diff < 180:  # clocks went forward
            runs = cron.wildcard and cron.matches(running)
            runs |= not cron.wildcard and any(cron.matches(virtual + timedelta(minutes=k)) for k in range(1, diff + 1))
            virtual = running
        elif -180 < diff <= 0:  # clocks went back: wildcard jobs only, virtual time waits
            runs = cron.wildcard and cron.matches(running)
        else:
            runs, virtual = cron.matches(running), running
        if runs:
            fired.append(moment)
        moment += timedelta(minutes=1)
    return fired


def debian_fire_times(
    cron: DebianCron, tz: ZoneInfo, after: datetime, count: int, until: datetime | None = None
) -> list[datetime]:
    """Day by day: a day without a clock change nearby maps wall times to instants directly; a
    day with one is simulated minute by minute."""
    found: list[datetime] = []
    day = after.astimezone(tz).date() - timedelta(days=1)
    last_day = until.astimezone(tz).date() + timedelta(days=1) if until else date(after.year + HORIZON_YEARS, 1, 1)
    while len([t for t in found if t > after]) < count and day <= last_day:
        if not any(cron.day_matches(day + timedelta(days=k)) for k in (-1, 0, 1)):
            day += timedelta(days=1)
            continue
        begin = datetime.combine(day, time(), tzinfo=tz).astimezone(UTC)
        finish = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz).astimezone(UTC)
        if offsets_change(tz, begin - timedelta(hours=4), finish + timedelta(hours=4)):
            found += simulate_cron_loop(cron, tz, begin, finish)
        elif cron.day_matches(day):
            for hour in cron.hours:
                for minute in cron.minutes:
                    found.append(datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC))
        day += timedelta(days=1)
    return sorted(t for t in found if t > after)[:count]


# -- random expressions --------------------------------------------------------------------


def random_value(rng: random.Random, index: int) -> str:
    low, high = LIMITS[index]
    value = rng.randint(low, high)
    if index == 3 and rng.random() < 0.3:
        return MONTHS[value - 1].upper() if rng.random() < 0.5 else MONTHS[value - 1]
    if index == 4 and value < 7 and rng.random() < 0.3:
        return DAYS[value].capitalize()
    return str(value)


def random_term(rng: random.Random, index: int) -> str:
    low, high = LIMITS[index]
    kind = rng.random()
    if kind < 0.35:
        return random_value(rng, index)
    if kind < 0.7:
        start = rng.randint(low, high)
        end = start if rng.random() < 0.25 else rng.randint(start, high)  # a-a included
        span = f"{start}-{end}"
        if index == 4 and end < 7 and rng.random() < 0.3:
            span = f"{DAYS[start]}-{DAYS[end]}"
        if index == 3 and rng.random() < 0.3:
            span = f"{MONTHS[start - 1]}-{MONTHS[end - 1]}"
        return span + (f"/{rng.randint(1, 5)}" if rng.random() < 0.3 else "")
    return f"*/{rng.randint(1, max(2, (high - low) // 2))}"


def random_field(rng: random.Random, index: int) -> str:
    if rng.random() < (0.3, 0.35, 0.5, 0.6, 0.5)[index]:
        return "*"
    return ",".join(random_term(rng, index) for _ in range(rng.choice((1, 1, 1, 2, 3))))


def random_expression(rng: random.Random) -> str:
    return " ".join(random_field(rng, index) for index in range(5))


def transitions(tz: ZoneInfo) -> list[datetime]:
    found, probe = [], SPAN_START
    while probe < SPAN_END:
        if probe.astimezone(tz).utcoffset() != (probe + timedelta(hours=1)).astimezone(tz).utcoffset():
            found.append(probe)
        probe += timedelta(hours=1)
    return found


def test_it_fires_when_debian_cron_would_for_random_expressions_in_every_zone():
    rng = random.Random(20260)
    changes = {zone: transitions(ZoneInfo(zone)) for zone in ZONES}
    assert all(changes[zone] for zone in ZONES if zone not in ("UTC", "Asia/Kolkata"))
    seconds = int((SPAN_END - SPAN_START).total_seconds())
    compared = 0
    for number in range(2000):
        expression, zone = random_expression(rng), ZONES[number % len(ZONES)]
        tz, cron = ZoneInfo(zone), DebianCron(expression)
        starts = [SPAN_START + timedelta(seconds=rng.randrange(seconds))]
        if changes[zone]:  # a little before a clock change: the first fire times cross it
            starts.append(rng.choice(changes[zone]) - timedelta(minutes=rng.randrange(0, 60 * 26)))
        for after in starts:
            count = rng.choice((20, 30, 50))
            expected = debian_fire_times(cron, tz, after, count)
            horizon = datetime(after.year + HORIZON_YEARS - 1, 12, 31, tzinfo=UTC)
            actual = [t for t in next_run_times(expression, zone, after, count) if t < horizon]
            assert actual == [t for t in expected if t < horizon], (expression, zone, after)
            compared += len(expected)
    assert compared > 50_000


@pytest.mark.parametrize("zone", ZONES)
def test_it_names_the_previous_fire_time_consistently_with_the_next_ones(zone):
    rng = random.Random(zone)
    tz = ZoneInfo(zone)
    moments = [t + timedelta(minutes=rng.randrange(-90, 90)) for t in transitions(tz)[:6]]
    moments += [SPAN_START + timedelta(seconds=rng.randrange(10**8)) for _ in range(20)]
    for number in range(30):
        expression = random_expression(rng)
        at = moments[number % len(moments)]
        expected: list[datetime] = []
        for window in (timedelta(hours=6), timedelta(days=3), timedelta(days=40), timedelta(days=800)):
            fired = debian_fire_times(DebianCron(expression), tz, at - window, 10**6, until=at)
            if expected := [t for t in fired if t <= at]:
                break
        assert previous_run_time(expression, zone, at) == (expected[-1] if expected else None), (expression, at)
