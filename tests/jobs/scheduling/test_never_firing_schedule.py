"""A cron expression that never fires (31 February) is refused by the form with the reason; one
stored anyway (a restore, raw SQL) affects only its own job: the other jobs' pages, API,
/health/, /metrics, `manage.py jobs`, process-jobs and beat keep working."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from celery import current_app
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from jobs.models import Job, JobRun
from jobs.running.maintenance import jobs_process
from jobs.scheduling.beat import LeaderDatabaseScheduler
from jobs.scheduling.firing import due_jobs_fire
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
    # What a restore could hold: the job's schedule (its beat row) says 31 February.
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
    assert "February has at most 29 days" in rows["broken"]["schedule_problem"]
    assert rows["healthy"]["schedule_problem"] is None
    dashboard = staff_client.get("/dashboard/")
    assert dashboard.status_code == 200 and "never fires" in dashboard.content.decode()
    job_page = staff_client.get("/dashboard/jobs/broken/").content.decode()
    assert "never fires: " in job_page and "February has at most 29 days" in job_page
    admin_page = staff_client.get(f"/admin/jobs/job/{broken.pk}/change/")
    assert admin_page.status_code == 200 and "February has at most 29 days" in admin_page.content.decode()
    assert api.get("/metrics").status_code == 200
    assert staff_client.get("/health/").status_code in (200, 503)
    out = StringIO()
    call_command("jobs", stdout=out)
    listing = {line.split()[0]: line for line in out.getvalue().splitlines()[1:]}
    assert "never fires" in listing["broken"] and "never fires" not in listing["healthy"]
    jobs_process(now=timezone.now())


def test_it_books_the_healthy_jobs_slot_and_nothing_for_the_broken_one(broken_and_healthy):
    healthy, broken = broken_and_healthy
    now = timezone.now()
    # Both are owed a slot (the broken one from before its expression was overwritten).
    Job.objects.update(next_fire_at=now - timedelta(seconds=1))
    report = due_jobs_fire(now=now)
    assert report.queued == 1
    assert list(JobRun.objects.values_list("job__name", flat=True)) == ["healthy"]
    assert Job.objects.get(pk=broken.pk).next_fire_at is None  # never fires: owed nothing more


@pytest.mark.django_db(transaction=True)
def test_it_keeps_beat_running_past_a_periodic_task_that_never_occurs(broken_and_healthy):
    # Another app's periodic task, stored (by a restore) with a crontab for 31 February.
    crontab = CrontabSchedule.objects.create(minute="0", hour="*", day_of_month="31", month_of_year="2")
    PeriodicTask.objects.create(name="reports.monthly", task="reports.monthly", crontab=crontab)
    healthy, _ = broken_and_healthy
    Job.objects.filter(pk=healthy.pk).update(next_fire_at=timezone.now() - timedelta(seconds=1))
    scheduler = LeaderDatabaseScheduler(app=current_app, lazy=True)
    try:
        scheduler.setup_schedule()
        entries = {entry.name: entry for entry in scheduler.schedule.values()}
        # Celery's crontab raises for 31 February; the entry is simply never due ...
        assert entries["reports.monthly"].is_due().is_due is False
        # ... and a whole tick of beat goes through, booking the healthy job's slot.
        assert scheduler.tick() <= 1.0
        assert list(JobRun.objects.values_list("job__name", flat=True)) == ["healthy"]
    finally:
        scheduler.close()
