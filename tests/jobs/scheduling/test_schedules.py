from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from jobs.scheduling.cron import (
    describe_schedule,
    last_slot,
    next_fire,
    next_run_times,
    validate_cron_expression,
)


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_it_computes_next_runs_across_spring_forward_in_new_york():
    # 09:00 New York is 14:00 UTC in winter (EST) and 13:00 UTC after 2026-03-08 (EDT).
    runs = next_run_times("0 9 * * *", "America/New_York", utc(2026, 3, 6, 15, 0), count=3)
    assert runs == [utc(2026, 3, 7, 14, 0), utc(2026, 3, 8, 13, 0), utc(2026, 3, 9, 13, 0)]


def test_it_computes_next_runs_across_fall_back_in_new_york():
    runs = next_run_times("0 9 * * *", "America/New_York", utc(2026, 10, 31, 14, 0), count=3)
    assert runs == [utc(2026, 11, 1, 14, 0), utc(2026, 11, 2, 14, 0), utc(2026, 11, 3, 14, 0)]


def test_it_runs_a_daily_job_once_when_its_wall_time_repeats():
    # 01:30 happens twice on 2026-11-01 in New York; a daily job fires the first time only.
    runs = next_run_times("30 1 * * *", "America/New_York", utc(2026, 10, 31, 12, 0), count=2)
    assert runs == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]


def test_it_runs_an_hourly_job_every_real_hour_when_clocks_fall_back():
    runs = next_run_times("0 * * * *", "America/New_York", utc(2026, 11, 1, 4, 30), count=3)
    assert runs == [utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 7, 0)]


def test_it_runs_a_job_in_the_skipped_hour_right_after_spring_forward():
    runs = next_run_times("30 2 * * *", "America/New_York", utc(2026, 3, 7, 12, 0), count=2)
    assert runs[0] == utc(2026, 3, 8, 7, 0)  # 03:00 EDT, the first moment after the gap
    assert runs[1] == utc(2026, 3, 9, 6, 30)


def test_it_aligns_interval_slots_so_every_beat_names_the_same_one():
    assert next_fire("", 30, "UTC", utc(2026, 1, 1, 0, 0, 31)).at == utc(2026, 1, 1, 0, 1, 0)
    assert next_fire("", 30, "UTC", utc(2026, 1, 1, 0, 1, 0)).at == utc(2026, 1, 1, 0, 1, 30)
    assert last_slot("", 30, "UTC", utc(2026, 1, 1, 0, 0, 58, 500000)) == utc(2026, 1, 1, 0, 0, 30)


@pytest.mark.parametrize("expression", ["* * * *", "61 * * * *", "a b c d e", "* * * * * *"])
def test_it_rejects_invalid_cron(expression):
    with pytest.raises(ValidationError):
        validate_cron_expression(expression)


def test_it_describes_schedules_in_words():
    assert describe_schedule("0 6 1 * *", None) == "At 06:00, on day 1 of the month"
    assert describe_schedule("0 9 * * *", None, "America/New_York") == "At 09:00 (America/New_York)"
    assert describe_schedule("", 30) == "Every 30 seconds"
    assert describe_schedule("", 300) == "Every 5 minutes"


def test_it_names_the_slot_of_a_fixed_hour_job_on_ordinary_and_dst_days():
    assert last_slot("0 3 * * *", None, "UTC", utc(2026, 11, 23, 3, 0, 0, 50000)) == utc(2026, 11, 23, 3, 0)
    ny = "America/New_York"
    assert last_slot("0 9 * * *", None, ny, utc(2026, 3, 8, 13, 0, 1)) == utc(2026, 3, 8, 13, 0)
    # 01:30 twice on 2026-11-01: the second tick belongs to the first occurrence's slot (one run).
    assert last_slot("30 1 * * *", None, ny, utc(2026, 11, 1, 5, 30, 1)) == utc(2026, 11, 1, 5, 30)
    assert last_slot("30 1 * * *", None, ny, utc(2026, 11, 1, 6, 30, 1)) == utc(2026, 11, 1, 5, 30)
    # An hourly job's second 01:00 is a slot of its own.
    assert last_slot("0 * * * *", None, ny, utc(2026, 11, 1, 6, 0, 1)) == utc(2026, 11, 1, 6, 0)
    assert last_slot("0 0 1 1 *", None, "UTC", utc(2026, 11, 23, 3, 0)) == utc(2026, 1, 1, 0, 0)


def test_it_says_in_words_that_either_restricted_day_field_matches():
    assert describe_schedule("0 9 1-7 * 1", None) == "At 09:00, on day 1 through 7 of the month, or on Monday"
    assert describe_schedule("0 9 * * 1", None) == "At 09:00, only on Monday"


def test_it_fires_on_either_restricted_day_field_and_reads_one_value_ranges():
    first_week_or_monday = next_run_times("0 9 1-7 * 1", "UTC", utc(2026, 12, 2, 10, 0), count=7)
    assert [moment.day for moment in first_week_or_monday] == [3, 4, 5, 6, 7, 14, 21]
    assert next_run_times("0 9 * 12-12 *", "UTC", utc(2026, 1, 5), count=1) == [utc(2026, 12, 1, 9, 0)]
    assert next_run_times("5-5 * * * *", "UTC", utc(2026, 1, 1), count=2) == [
        utc(2026, 1, 1, 0, 5),
        utc(2026, 1, 1, 1, 5),
    ]
    assert next_run_times("0 9 * * 0-0/5", "UTC", utc(2026, 12, 1), count=1) == [utc(2026, 12, 6, 9, 0)]  # Sunday only


@pytest.mark.parametrize("expression", ["0 9 L * *", "0 9 * * 1#2", "0 9 5/10 * *", "0 9 LW * *", "0 25 * * *"])
def test_it_refuses_what_debian_cron_does_not_read(expression):
    with pytest.raises(ValidationError, match="not a valid cron expression"):
        validate_cron_expression(expression)


def test_it_reads_names_and_sunday_as_seven():
    validate_cron_expression("0 9 * jan-mar,JUL mon-fri")
    assert next_run_times("0 9 * * 7", "UTC", utc(2026, 12, 1), count=1) == [utc(2026, 12, 6, 9, 0)]
