"""One definition of "late" (Job.objects.late), and every surface showing it."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from jobs.models import Job, JobRun
from jobs.running.runner import run_trigger
from jobs.scheduling.cron import next_fire
from jobs.scheduling.firing import due_jobs_fire
from tests.jobs.conftest import API_KEY, NOON
from tests.scheduling import owe_since

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("alert_recipients")]
Status = JobRun.Status


def grace(job) -> float:
    upcoming = next_fire(job.cron_expression, job.interval_seconds, job.timezone, NOON, job.grace_seconds)
    return (upcoming.late_at - upcoming.at).total_seconds()


def late_jobs(now):
    """Every late job by id, with the first slot it missed."""
    return {job.pk: (job, job.next_fire_at) for job in Job.objects.late(now)}


def test_it_defaults_grace_to_a_tenth_of_the_period_between_a_minute_and_an_hour(old_job):
    every_minute = old_job("every-minute", cron_expression="* * * * *")
    hourly = old_job("hourly", cron_expression="0 * * * *")
    daily = old_job("daily", cron_expression="0 6 * * *")
    interval = old_job("interval", interval_seconds=1200)
    tuned = old_job("tuned", cron_expression="0 6 * * *", grace_seconds=90)
    graces = {job.name: grace(job) for job in (every_minute, hourly, daily, interval, tuned)}
    assert graces == {"every-minute": 60, "hourly": 360, "daily": 3600, "interval": 120, "tuned": 90}


def test_it_is_late_only_once_the_grace_after_the_owed_slot_has_passed(old_job):
    job = old_job("hourly", cron_expression="0 * * * *")  # grace 6 min
    twelve = NOON.replace(minute=0, second=0)
    owe_since(job, twelve - timedelta(minutes=1))  # beat owes it 12:00
    assert job.pk not in late_jobs(twelve + timedelta(minutes=5, seconds=59))
    assert late_jobs(twelve + timedelta(minutes=6, seconds=1))[job.pk][1] == twelve
    # Beat comes back and records the slot (caught up): no longer late, owed 13:00 next.
    due_jobs_fire(now=twelve + timedelta(minutes=6, seconds=2))
    assert job.pk not in late_jobs(twelve + timedelta(minutes=6, seconds=3))
    assert Job.objects.get(pk=job.pk).next_fire_at == twelve + timedelta(hours=1)


def test_it_reads_a_cron_in_the_jobs_timezone(make_job):
    # 09:00 in New York is 14:00 UTC in November.
    job = owe_since(make_job("ny", cron_expression="0 9 * * *", timezone="America/New_York", grace_seconds=60), NOON)
    fourteen = NOON.replace(hour=14, minute=0, second=0)
    assert job.next_fire_at == fourteen
    assert job.pk not in late_jobs(fourteen + timedelta(seconds=59))
    assert late_jobs(fourteen + timedelta(seconds=61))[job.pk][1] == fourteen


def test_it_counts_a_slot_beat_recorded_as_skipped_but_not_a_run_by_hand(old_job, make_job):
    job = old_job("minutely", cron_expression="* * * * *")
    now = timezone.now()
    assert job.pk in late_jobs(now)
    # Someone runs it by hand: the schedule is still not being kept.
    run_trigger(job=job, triggered_by="manual", dispatch=False)
    assert job.pk in late_jobs(now)
    # Beat records its slot as a skip (the manual run is still active): kept.
    assert due_jobs_fire(now=now).skipped == 1
    assert job.pk not in late_jobs(now)


def test_it_is_never_late_when_disabled_new_or_just_rescheduled(old_job, make_job):
    now = timezone.now()
    disabled = old_job("disabled", enabled=False)
    new = make_job("brand-new", cron_expression="0 * * * *")
    rescheduled = old_job("rescheduled", cron_expression="0 * * * *")
    rescheduled.cron_expression = "30 * * * *"
    rescheduled.save()
    assert rescheduled.schedule_changed_at is not None
    assert set(late_jobs(now)) & {disabled.pk, new.pk, rescheduled.pk} == set()


def test_it_does_not_move_the_schedule_clock_for_other_edits(old_job):
    job = old_job("edited")
    job.description = "only words changed"
    job.save()
    assert Job.objects.get(pk=job.pk).schedule_changed_at is None


def test_it_shows_late_in_manage_py_jobs(old_job):
    old_job("forgotten", cron_expression="* * * * *")
    out = StringIO()
    call_command("jobs", stdout=out)
    row = next(line for line in out.getvalue().splitlines() if line.startswith("forgotten"))
    assert " late " in row


def test_it_shows_late_in_the_status_api_and_the_dashboard(old_job, client, django_user_model):
    old_job("forgotten", cron_expression="* * * * *")
    body = client.get("/api/jobs/status", HTTP_AUTHORIZATION=f"Bearer {API_KEY}").json()
    assert {job["name"]: job["status"] for job in body["jobs"]} == {"forgotten": "late"}
    client.force_login(
        django_user_model.objects.create_user("s", password="x-123456789", is_staff=True, is_superuser=True)
    )
    assert client.get("/dashboard/data.json").json()["jobs"][0]["status"] == "late"
