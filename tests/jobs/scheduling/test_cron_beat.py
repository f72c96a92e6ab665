"""Beat fires a Cronhouse job at the times the schedule pages show (``next_run_times``): beat's
firing is driven on a pinned clock as its loop drives it (sleep until the earliest slot owed,
record what is due at that instant)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.models import Job, JobRun
from jobs.scheduling.cron import next_run_times
from jobs.scheduling.firing import due_jobs_fire, next_due_at
from tests.scheduling import owe_since

pytestmark = pytest.mark.django_db


def beat_fires(job, start: datetime, end: datetime) -> list[datetime]:
    """The instants beat records a slot of ``job`` between ``start`` and ``end``."""
    owe_since(job, start)
    fired = []
    while (clock := next_due_at()) is not None and clock < end:
        report = due_jobs_fire(now=clock)
        fired += [clock] * (report.queued + report.skipped)
        JobRun.objects.filter(job=job).update(status=JobRun.Status.SUCCEEDED)  # each run ends in time
    recorded = JobRun.objects.filter(job=job).order_by("scheduled_for").values_list("scheduled_for", flat=True)
    assert list(recorded) == fired
    Job.objects.filter(pk=job.pk).update(enabled=False)  # out of the way of the test's next job
    return fired


def shown(job, start: datetime, end: datetime) -> list[datetime]:
    return [t for t in next_run_times(job.cron_expression, job.timezone, start, count=500) if t < end]


def test_it_fires_on_days_one_to_seven_and_on_every_monday(make_job):
    job = make_job("first-week-or-monday", cron_expression="0 9 1-7 * 1", timezone="Europe/London")
    start, end = datetime(2026, 11, 30, 12, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    fired = beat_fires(job, start, end)
    days = [moment.astimezone(ZoneInfo("Europe/London")).strftime("%a %d") for moment in fired]
    # Thursday 3 and Friday 4 December are days 1-7; 14, 21 and 28 are Mondays.
    assert days == ["Tue 01", "Wed 02", "Thu 03", "Fri 04", "Sat 05", "Sun 06", "Mon 07", "Mon 14", "Mon 21", "Mon 28"]
    assert all(moment.astimezone(UTC).hour == 9 for moment in fired)
    assert fired == shown(job, start, end)


@pytest.mark.parametrize(
    ("zone", "change"),
    [
        ("Europe/London", datetime(2026, 3, 29, 1, tzinfo=UTC)),  # 01:00 GMT -> 02:00 BST
        ("Europe/London", datetime(2026, 10, 25, 1, tzinfo=UTC)),  # 02:00 BST -> 01:00 GMT
        ("America/New_York", datetime(2026, 3, 8, 7, tzinfo=UTC)),  # 02:00 EST -> 03:00 EDT
        ("America/New_York", datetime(2026, 11, 1, 6, tzinfo=UTC)),  # 02:00 EDT -> 01:00 EST
    ],
)
@pytest.mark.parametrize("expression", ["30 1 * * *", "30 2 * * *", "*/20 1,2 * * *", "0 * * * *", "0 9 1-7 * 1"])
def test_it_fires_at_the_times_shown_when_clocks_change(make_job, zone, change, expression):
    job = make_job("dst", cron_expression=expression, timezone=zone)
    start, end = change - timedelta(days=2), change + timedelta(days=2)
    assert beat_fires(job, start, end) == shown(job, start, end)


def test_it_fires_a_skipped_time_once_after_the_gap_and_a_repeated_one_once(make_job):
    ny = "America/New_York"
    skipped = make_job("skipped", cron_expression="30 2 * * *", timezone=ny)
    spring = beat_fires(skipped, datetime(2026, 3, 7, 12, tzinfo=UTC), datetime(2026, 3, 8, 20, tzinfo=UTC))
    assert spring == [datetime(2026, 3, 8, 7, 0, tzinfo=UTC)]  # 03:00 EDT, the first minute after the gap
    repeated = make_job("repeated", cron_expression="30 1 * * *", timezone=ny)
    autumn = beat_fires(repeated, datetime(2026, 10, 31, 12, tzinfo=UTC), datetime(2026, 11, 1, 12, tzinfo=UTC))
    assert autumn == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]  # 01:30 EDT only
    every_20 = make_job("every-20", cron_expression="*/20 1 * * *", timezone=ny)
    both = beat_fires(every_20, datetime(2026, 10, 31, 12, tzinfo=UTC), datetime(2026, 11, 1, 12, tzinfo=UTC))
    assert len(both) == 6  # 01:00, 01:20, 01:40 EDT and again EST


def test_it_fires_an_interval_job_on_its_slots_to_the_second(make_job):
    job = make_job("every-30-s", interval_seconds=30)
    start = datetime(2026, 12, 2, 10, 0, 7, tzinfo=UTC)
    fired = beat_fires(job, start, start + timedelta(minutes=2))
    assert [moment.strftime("%H:%M:%S") for moment in fired] == ["10:00:30", "10:01:00", "10:01:30", "10:02:00"]


def test_it_fires_a_job_whose_day_of_week_names_sunday_as_seven(make_job):
    job = make_job("weekend", cron_expression="0 9 * * 5-7")
    start, end = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC)
    fired = beat_fires(job, start, end)
    assert [moment.strftime("%a") for moment in fired] == ["Fri", "Sat", "Sun"]
