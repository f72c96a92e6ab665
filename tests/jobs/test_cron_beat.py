"""Beat fires a Cronhouse job at the times the schedule pages show (``next_run_times``): the
scheduler's entry is driven on a pinned clock, as beat's loop drives it (ask ``is_due``, sleep
the seconds it answers, record the run when due)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from celery import current_app
from celery.schedules import crontab, schedule
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from jobs.beat import GuardedEntry
from jobs.schedules import next_run_times

pytestmark = pytest.mark.django_db


def entry_for(job) -> GuardedEntry:
    return GuardedEntry(PeriodicTask.objects.select_related("job").get(pk=job.periodic_task_id), app=current_app)


def beat_fires(entry: GuardedEntry, start: datetime, end: datetime) -> list[datetime]:
    """The instants beat fires ``entry`` between ``start`` and ``end``."""
    clock = start
    entry.schedule.nowfun = lambda: clock
    entry.last_run_at = start
    fired = []
    while clock < end:
        due, wait = entry.is_due()
        if due:
            fired.append(clock)
            entry.last_run_at = clock  # what beat's reserve() records for the entry
        clock += timedelta(seconds=wait)
    return fired


def shown(job, start: datetime, end: datetime) -> list[datetime]:
    return [t for t in next_run_times(job.cron_expression, job.timezone, start, count=500) if t < end]


def test_it_fires_on_days_one_to_seven_and_on_every_monday(make_job):
    job = make_job("first-week-or-monday", cron_expression="0 9 1-7 * 1", timezone="Europe/London")
    start, end = datetime(2026, 11, 30, 12, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    fired = beat_fires(entry_for(job), start, end)
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
    assert beat_fires(entry_for(job), start, end) == shown(job, start, end)


def test_it_fires_a_skipped_time_once_after_the_gap_and_a_repeated_one_once(make_job):
    ny = "America/New_York"
    skipped = make_job("skipped", cron_expression="30 2 * * *", timezone=ny)
    spring = beat_fires(entry_for(skipped), datetime(2026, 3, 7, 12, tzinfo=UTC), datetime(2026, 3, 8, 20, tzinfo=UTC))
    assert spring == [datetime(2026, 3, 8, 7, 0, tzinfo=UTC)]  # 03:00 EDT, the first minute after the gap
    repeated = make_job("repeated", cron_expression="30 1 * * *", timezone=ny)
    autumn = beat_fires(
        entry_for(repeated), datetime(2026, 10, 31, 12, tzinfo=UTC), datetime(2026, 11, 1, 12, tzinfo=UTC)
    )
    assert autumn == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]  # 01:30 EDT only
    every_20 = make_job("every-20", cron_expression="*/20 1 * * *", timezone=ny)
    both = beat_fires(
        entry_for(every_20), datetime(2026, 10, 31, 12, tzinfo=UTC), datetime(2026, 11, 1, 12, tzinfo=UTC)
    )
    assert len(both) == 6  # 01:00, 01:20, 01:40 EDT and again EST


def test_it_keeps_celerys_schedules_for_interval_jobs_and_other_tasks(make_job):
    interval = make_job("every-30-s", interval_seconds=30)
    assert type(entry_for(interval).schedule) is schedule
    nightly = CrontabSchedule.objects.create(minute="0", hour="4")
    other = PeriodicTask.objects.create(name="not-a-job", task="celery.backend_cleanup", crontab=nightly)
    assert isinstance(GuardedEntry(other, app=current_app).schedule, crontab)


def test_it_fires_a_job_whose_day_of_week_names_sunday_as_seven(make_job):
    job = make_job("weekend", cron_expression="0 9 * * 5-7")
    start, end = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 8, tzinfo=UTC)
    fired = beat_fires(entry_for(job), start, end)
    assert [moment.strftime("%a") for moment in fired] == ["Fri", "Sat", "Sun"]
