"""One definition of "late" (jobs.lateness), and every surface showing it."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from jobs.lateness import grace_for, is_late, late_jobs, missed_slot
from jobs.models import Job, JobRun

from .conftest import API_KEY, NOON

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("alert_recipients")]
Status = JobRun.Status


def test_it_defaults_grace_to_a_tenth_of_the_period_between_a_minute_and_an_hour(old_job):
    every_minute = old_job("every-minute", cron_expression="* * * * *")
    hourly = old_job("hourly", cron_expression="0 * * * *")
    daily = old_job("daily", cron_expression="0 6 * * *")
    interval = old_job("interval", interval_seconds=1200)
    tuned = old_job("tuned", cron_expression="0 6 * * *", grace_seconds=90)
    grace = {job.name: grace_for(job, NOON).total_seconds() for job in (every_minute, hourly, daily, interval, tuned)}
    assert grace == {"every-minute": 60, "hourly": 360, "daily": 3600, "interval": 120, "tuned": 90}


def test_it_is_late_only_once_the_grace_after_the_last_slot_has_passed(old_job):
    job = old_job("hourly", cron_expression="0 * * * *")  # grace 6 min
    twelve = NOON.replace(minute=0, second=0)
    assert missed_slot(job, twelve + timedelta(minutes=5, seconds=59), None) == twelve - timedelta(hours=1)
    # The 11:00 slot had its run: not late while 12:00 is within its grace ...
    assert not is_late(job, twelve + timedelta(minutes=5), twelve - timedelta(hours=1))
    # ... late once 12:00's grace expired with nothing recorded since 11:00.
    assert missed_slot(job, twelve + timedelta(minutes=6, seconds=1), twelve - timedelta(hours=1)) == twelve


def test_it_reads_a_cron_in_the_jobs_timezone(old_job):
    # 09:00 in New York is 14:00 UTC in November.
    job = old_job("ny", cron_expression="0 9 * * *", timezone="America/New_York", grace_seconds=60)
    at = NOON.replace(hour=14, minute=1, second=30)
    assert missed_slot(job, at, None) == NOON.replace(hour=14, minute=0, second=0)
    assert missed_slot(job, at - timedelta(minutes=1), None) == NOON.replace(hour=14, minute=0, second=0) - timedelta(
        days=1
    )


def test_it_counts_a_recorded_skip_or_a_manual_run_as_activity(old_job):
    job = old_job("minutely", cron_expression="* * * * *")
    now = timezone.now()
    assert job.pk in late_jobs(now)
    JobRun.objects.create(job=job, triggered_by="schedule", status=Status.SKIPPED, skip_reason="busy")
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
