"""Blackout windows: a slot inside one is recorded skipped with the window's name, or deferred to
its end, read in the job's own timezone (daylight-saving changes included)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.contrib.auth.models import Group

from jobs.models import BlackoutWindow, Job, JobOperatorGroup, JobRun
from jobs.running.maintenance import lateness_process, runs_to_dispatch
from jobs.scheduling.firing import due_jobs_fire
from jobs.scheduling.windows import window_slots

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("alert_recipients")]
Status = JobRun.Status
HOUR = timedelta(hours=1)


def at(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def window(name, *, kind="once", starts, ends, jobs=(), groups=()) -> BlackoutWindow:
    made = BlackoutWindow(
        name=name, kind=kind, starts_on=starts.date(), starts_at=starts.time(), ends_on=ends.date(), ends_at=ends.time()
    )
    made.full_clean()
    made.save()
    made.jobs.set(jobs)
    made.groups.set(groups)
    return made


def fire_through(job, slots: list[datetime]) -> dict[datetime, JobRun]:
    """Beat owes ``job`` the first slot and records each slot on time; the runs by slot. Each
    run is marked succeeded before the next slot, so no slot is skipped for an active run."""
    Job.objects.filter(pk=job.pk).update(next_fire_at=slots[0], late_at=slots[0] + timedelta(minutes=5))
    for slot in slots:
        due_jobs_fire(now=slot + timedelta(seconds=1))
        JobRun.objects.filter(job=job, status=Status.QUEUED, not_before__isnull=True).update(status=Status.SUCCEEDED)
    return {run.scheduled_for: run for run in JobRun.objects.filter(job=job)}


def test_it_skips_a_slot_inside_a_one_off_window_with_the_windows_name(make_job):
    job = make_job("hourly", cron_expression="0 * * * *")
    window("db-migration", starts=datetime(2026, 3, 10, 10, 30), ends=datetime(2026, 3, 10, 12, 0), jobs=[job])
    runs = fire_through(job, [at(2026, 3, 10, 10), at(2026, 3, 10, 11), at(2026, 3, 10, 12)])
    assert [runs[slot].status for slot in sorted(runs)] == [Status.SUCCEEDED, Status.SKIPPED, Status.SUCCEEDED]
    skipped = runs[at(2026, 3, 10, 11)]
    assert skipped.window_name == "db-migration"
    assert skipped.skip_reason == "inside blackout window 'db-migration'"


def test_it_keeps_a_windows_local_hours_when_clocks_go_forward_in_berlin(make_job):
    # 2026-03-29, the last Sunday of March: 02:00 CET becomes 03:00 CEST. The window 01:00-04:00
    # local holds two hourly slots (01:00 CET and 03:00 CEST), not three.
    job = make_job("berlin-spring", cron_expression="0 * * * *", timezone="Europe/Berlin")
    window("spring", starts=datetime(2026, 3, 29, 1, 0), ends=datetime(2026, 3, 29, 4, 0), jobs=[job])
    runs = fire_through(job, [at(2026, 3, 28, 23), at(2026, 3, 29, 0), at(2026, 3, 29, 1), at(2026, 3, 29, 2)])
    assert {slot: run.status for slot, run in runs.items()} == {
        at(2026, 3, 28, 23): Status.SUCCEEDED,  # 00:00 CET
        at(2026, 3, 29, 0): Status.SKIPPED,  # 01:00 CET
        at(2026, 3, 29, 1): Status.SKIPPED,  # 03:00 CEST
        at(2026, 3, 29, 2): Status.SUCCEEDED,  # 04:00 CEST: the window's end
    }


def test_it_holds_both_repeated_hours_of_a_yearly_window_when_clocks_go_back_in_berlin(make_job):
    # 2026-10-25, the last Sunday of October: 03:00 CEST becomes 02:00 CET, so the wall-clock hour
    # 02:00-03:00 happens twice, and the yearly window "Oct 25 02:00-03:00" holds both.
    job = make_job("berlin-autumn", cron_expression="0 * * * *", timezone="Europe/Berlin")
    window("autumn", kind="yearly", starts=datetime(2026, 10, 25, 2), ends=datetime(2026, 10, 25, 3), jobs=[job])
    runs = fire_through(job, [at(2026, 10, 24, 23), at(2026, 10, 25, 0), at(2026, 10, 25, 1), at(2026, 10, 25, 2)])
    assert {slot: run.status for slot, run in runs.items()} == {
        at(2026, 10, 24, 23): Status.SUCCEEDED,  # 01:00 CEST
        at(2026, 10, 25, 0): Status.SKIPPED,  # 02:00 CEST
        at(2026, 10, 25, 1): Status.SKIPPED,  # 02:00 CET
        at(2026, 10, 25, 2): Status.SUCCEEDED,  # 03:00 CET
    }


def test_it_skips_a_yearly_date_every_year(make_job):
    job = make_job("daily", cron_expression="0 9 * * *")
    christmas = window(
        "christmas", kind="yearly", starts=datetime(2026, 12, 25), ends=datetime(2026, 12, 26), jobs=[job]
    )
    assert christmas.starts_on == date(2000, 12, 25)  # the year of a yearly window means nothing
    runs = fire_through(job, [at(2026, 12, 24, 9), at(2026, 12, 25, 9), at(2026, 12, 26, 9)])
    assert [runs[slot].status for slot in sorted(runs)] == [Status.SUCCEEDED, Status.SKIPPED, Status.SUCCEEDED]
    assert christmas.holds(at(2031, 12, 25, 23, 59), "UTC") == at(2031, 12, 26)
    assert christmas.holds(at(2031, 12, 26, 0), "UTC") is None


def test_it_reads_a_yearly_window_across_new_year():
    new_year = BlackoutWindow(
        name="new-year",
        kind="yearly",
        starts_on=date(2000, 12, 31),
        starts_at=time(18),
        ends_on=date(2000, 1, 1),
        ends_at=time(6),
    )
    assert new_year.holds(at(2026, 12, 31, 20), "UTC") is not None
    assert new_year.holds(at(2027, 1, 1, 5, 59), "UTC") is not None
    assert new_year.holds(at(2027, 1, 1, 6), "UTC") is None
    assert new_year.holds(at(2026, 12, 31, 17, 59), "UTC") is None


def test_it_defers_a_slot_to_the_windows_end_for_a_deferring_job(make_job):
    job = make_job("deferring", cron_expression="0 * * * *", window_action=Job.WindowAction.DEFER)
    window("upgrade", starts=datetime(2026, 3, 10, 10), ends=datetime(2026, 3, 10, 12, 30), jobs=[job])
    runs = fire_through(job, [at(2026, 3, 10, 10), at(2026, 3, 10, 11), at(2026, 3, 10, 12)])
    deferred = runs[at(2026, 3, 10, 10)]
    assert (deferred.status, deferred.not_before, deferred.window_name) == (
        Status.QUEUED,
        at(2026, 3, 10, 12, 30),
        "upgrade",
    )
    assert deferred.dispatched_at is None  # not sent before its time
    for later in (at(2026, 3, 10, 11), at(2026, 3, 10, 12)):
        assert runs[later].status == Status.SKIPPED
        assert runs[later].skip_reason == f"inside window 'upgrade': deferred, but run #{deferred.pk} is queued"
    assert deferred.pk not in set(runs_to_dispatch(at(2026, 3, 10, 12, 29)).values_list("pk", flat=True))
    assert deferred.pk in set(runs_to_dispatch(at(2026, 3, 10, 12, 30)).values_list("pk", flat=True))


def test_it_holds_the_jobs_of_an_operator_group(make_job):
    finance = Group.objects.create(name="finance")
    job = make_job("statements", cron_expression="0 * * * *")
    other = make_job("other", cron_expression="0 * * * *")
    JobOperatorGroup.objects.create(job=job, group=finance)
    window("year-end", starts=datetime(2026, 3, 10, 10), ends=datetime(2026, 3, 10, 11), groups=[finance])
    Job.objects.filter(pk__in=[job.pk, other.pk]).update(next_fire_at=at(2026, 3, 10, 10))
    due_jobs_fire(now=at(2026, 3, 10, 10, 0, 1))
    assert JobRun.objects.get(job=job).window_name == "year-end"
    assert JobRun.objects.get(job=other).status == Status.QUEUED


def test_it_sends_no_late_alert_for_a_slot_missed_inside_a_window(make_job, mailoutbox):
    held = make_job("held", cron_expression="0 * * * *")
    free = make_job("free", cron_expression="0 * * * *")
    window("maintenance", starts=datetime(2026, 3, 10, 9), ends=datetime(2026, 3, 10, 12), jobs=[held])
    # Beat was down for the maintenance: both jobs' 10:00 slot went unrecorded past its grace.
    Job.objects.filter(pk__in=[held.pk, free.pk]).update(
        next_fire_at=at(2026, 3, 10, 10), late_at=at(2026, 3, 10, 10, 6)
    )
    report = lateness_process(now=at(2026, 3, 10, 10, 30))
    assert report["late_started"] == 1
    held.refresh_from_db()
    free.refresh_from_db()
    assert (held.late_since, free.late_since) == (None, at(2026, 3, 10, 10))


def test_it_shows_which_next_runs_fall_inside_a_window(make_job):
    job = make_job("shown", cron_expression="0 * * * *")
    window("lunch", starts=datetime(2026, 3, 10, 12), ends=datetime(2026, 3, 10, 13), jobs=[job])
    slots = [at(2026, 3, 10, 11), at(2026, 3, 10, 12), at(2026, 3, 10, 13)]
    assert window_slots(job, slots, now=at(2026, 3, 10, 10)) == [(slots[0], ""), (slots[1], "lunch"), (slots[2], "")]


def test_it_refuses_a_one_off_window_that_ends_before_it_starts():
    from django.core.exceptions import ValidationError

    backwards = BlackoutWindow(name="x", starts_on=date(2026, 3, 10), ends_on=date(2026, 3, 9))
    with pytest.raises(ValidationError):
        backwards.full_clean()


def test_it_reads_the_windows_with_a_fixed_number_of_queries_however_many_jobs_are_due(make_job):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    finance = Group.objects.create(name="finance")
    window("close", starts=datetime(2026, 3, 10, 10), ends=datetime(2026, 3, 10, 11), groups=[finance])

    def fired(count: int, tag: str) -> int:
        jobs = [make_job(f"{tag}-{index}", cron_expression="0 * * * *") for index in range(count)]
        JobOperatorGroup.objects.bulk_create([JobOperatorGroup(job=job, group=finance) for job in jobs[::2]])
        Job.objects.filter(pk__in=[job.pk for job in jobs]).update(next_fire_at=at(2026, 3, 10, 10))
        with CaptureQueriesContext(connection) as queries:
            due_jobs_fire(now=at(2026, 3, 10, 10, 0, 1))
        held = JobRun.objects.filter(job__in=jobs, window_name="close").count()
        assert held == (count + 1) // 2
        JobRun.objects.all().delete()
        return len(queries)

    assert fired(4, "few") == fired(40, "many")
