"""A cron expression that never fires (31 February) is refused by the form with the reason; one
stored anyway (a restore, raw SQL) affects only its own job: the other jobs' pages, API,
/health/, /metrics, `manage.py jobs`, process-jobs and beat keep working."""

from __future__ import annotations

from io import StringIO

import pytest
from celery import current_app
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from jobs.beat import LeaderDatabaseScheduler
from jobs.maintenance import jobs_process
from jobs.models import Job, JobRun
from jobs.ticks import tick_fire
from tests.jobs.conftest import job_form_data

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("expression", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"])
def test_it_refuses_an_expression_that_never_fires_naming_why(staff_client, make_job, expression):
    job = make_job("nightly")
    response = staff_client.post(f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, cron_expression=expression))
    page = response.content.decode()
    assert response.status_code == 200 and "never fires" in page and "February has at most 29 days" in page
    job.refresh_from_db()
    assert job.cron_expression == "* * * * *"


@pytest.fixture
def broken_and_healthy(make_job):
    healthy = make_job("healthy", cron_expression="* * * * *")
    broken = make_job("broken", cron_expression="0 * 1 2 *")
    # What a restore could hold: the job and its beat entry both say 31 February.
    Job.objects.filter(pk=broken.pk).update(cron_expression="0 * 31 2 *")
    task = PeriodicTask.objects.get(name__contains="broken")
    type(task.crontab).objects.filter(pk=task.crontab_id).update(day_of_month="31")
    return healthy, Job.objects.get(pk=broken.pk)


def test_it_keeps_every_surface_answering_with_a_never_firing_job_stored(
    broken_and_healthy, staff_client, api, settings
):
    healthy, broken = broken_and_healthy
    status = api.get("/api/jobs/status")
    assert status.status_code == 200
    rows = {row["name"]: row for row in status.json()["jobs"]}
    assert rows["broken"]["next_run"] is None and rows["healthy"]["next_run"] is not None
    assert staff_client.get("/dashboard/").status_code == 200
    assert staff_client.get(f"/admin/jobs/job/{broken.pk}/change/").status_code == 200
    assert api.get("/metrics").status_code == 200
    assert staff_client.get("/health/").status_code in (200, 503)
    out = StringIO()
    call_command("jobs", stdout=out)
    assert "healthy" in out.getvalue() and "broken" in out.getvalue()
    jobs_process(now=timezone.now())


def test_it_books_the_healthy_jobs_tick_and_nothing_for_the_broken_one(broken_and_healthy):
    healthy, broken = broken_and_healthy
    now = timezone.now()
    assert tick_fire(job_id=broken.pk, fired_at=now) is None
    assert tick_fire(job_id=healthy.pk, fired_at=now).queued
    assert list(JobRun.objects.values_list("job__name", flat=True)) == ["healthy"]


@pytest.mark.django_db(transaction=True)
def test_it_keeps_beat_running_past_an_entry_that_never_occurs(broken_and_healthy):
    scheduler = LeaderDatabaseScheduler(app=current_app, lazy=True)
    try:
        scheduler.setup_schedule()
        entries = {entry.name: entry for entry in scheduler.schedule.values()}
        broken_entry = next(entry for name, entry in entries.items() if "broken" in name)
        # Celery's crontab raises for 31 February; the entry is simply never due.
        assert broken_entry.is_due().is_due is False
        healthy_entry = next(entry for name, entry in entries.items() if "healthy" in name)
        assert healthy_entry.is_due().next <= 60
    finally:
        scheduler.close()
