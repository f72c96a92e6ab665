"""Every value a form accepts renders everywhere: a job's numbers are bounded (an interval of at
most a year) in the forms and in the database, and an interval stored out of range anyway (a
restore, raw SQL past the check) shows "interval out of range" on its own row while every page
answers.

The interval is the job's django-celery-beat IntervalSchedule row, which every save checks, so
``unchecked_interval`` stores one the way a restore would: a row of its own, pointed at by an
UPDATE (no signal, no check). PostgreSQL's integer column holds at most 2,147,483,647 (68 years);
SQLite holds the attacker's 99,999,999,999.
"""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from jobs.models import Job, JobRun
from jobs.running.maintenance import jobs_process
from jobs.scheduling.firing import due_jobs_fire
from tests.jobs.conftest import job_form_data

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("seconds", [31_536_001, 99_999_999_999, 9_999_999_999_999])
def test_it_refuses_an_interval_of_more_than_a_year_in_the_admin(staff_client, make_job, seconds):
    job = make_job("every-minute", interval_seconds=60)
    response = staff_client.post(
        f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, interval_seconds=seconds, cron_expression="")
    )
    page = response.content.decode()
    assert response.status_code == 200 and "An interval of more than a year (31,536,000 s)" in page
    job.refresh_from_db()
    assert job.interval_seconds == 60


def test_it_saves_an_interval_of_a_year_and_shows_its_next_runs(staff_client, make_job):
    job = make_job("yearly", interval_seconds=60)
    data = job_form_data(job, interval_seconds=31_536_000, cron_expression="")
    assert staff_client.post(f"/admin/jobs/job/{job.pk}/change/", data).status_code == 302
    job.refresh_from_db()
    assert job.interval_seconds == 31_536_000 and job.next_fire_at > timezone.now()
    assert staff_client.get("/dashboard/jobs/yearly/").status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timeout_seconds", 10**12),
        ("timeout_seconds", 0),
        ("max_retries", 1000),
        ("retry_backoff_seconds", 10**12),
        ("expected_duration_seconds", 10**15),
        ("grace_seconds", 10**15),
        ("catch_up_limit", 30_000),
        ("escalate_after_failures", 0),
    ],
)
def test_it_refuses_a_number_out_of_its_range_in_the_admin(staff_client, make_job, field, value):
    job = make_job("nightly")
    response = staff_client.post(f"/admin/jobs/job/{job.pk}/change/", job_form_data(job, **{field: value}))
    page = response.content.decode()
    assert response.status_code == 200 and "Please correct the error" in page
    assert "Ensure this value is less than or equal to" in page or "greater than or equal to" in page
    assert Job.objects.get(pk=job.pk).updated_at == job.updated_at


def test_it_refuses_an_out_of_range_number_in_the_database_too(make_job):
    job = make_job("nightly")
    for field, value in (("timeout_seconds", 0), ("max_retries", 26)):
        with pytest.raises(IntegrityError), transaction.atomic():
            Job.objects.filter(pk=job.pk).update(**{field: value})


def test_it_waits_at_most_a_week_before_a_late_retry(make_job):
    job = make_job("flaky", max_retries=25, retry_backoff_seconds=86_400)
    assert job.backoff_for_attempt(1).total_seconds() == 86_400
    assert job.backoff_for_attempt(25).total_seconds() == 7 * 86_400


@pytest.fixture
def unchecked_interval():
    """Store ``seconds`` as a job's interval past the database's check (see the module's docstring)."""

    def store(job: Job, seconds: int) -> Job:
        if connection.vendor == "postgresql":
            seconds = min(seconds, 2**31 - 1)
        row = IntervalSchedule.objects.create(every=seconds, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.filter(pk=job.periodic_task_id).update(interval=row)
        return Job.objects.get(pk=job.pk)

    return store


@pytest.fixture
def out_of_range_and_healthy(make_job, unchecked_interval):
    healthy = make_job("healthy", interval_seconds=60)
    broken = unchecked_interval(make_job("broken", interval_seconds=60), 99_999_999_999)
    assert broken.interval_seconds > 31_536_000
    return healthy, broken


def test_it_keeps_every_page_answering_with_an_interval_stored_out_of_range(
    out_of_range_and_healthy, staff_client, api
):
    healthy, broken = out_of_range_and_healthy
    dashboard = staff_client.get("/dashboard/")
    assert dashboard.status_code == 200 and "interval out of range" in dashboard.content.decode()
    assert staff_client.get("/dashboard/data.json").status_code == 200
    schedule = staff_client.get("/dashboard/schedule/")
    assert schedule.status_code == 200 and "never fires: interval out of range" in schedule.content.decode()
    job_page = staff_client.get("/dashboard/jobs/broken/")
    assert job_page.status_code == 200 and "never fires: interval out of range" in job_page.content.decode()
    assert staff_client.get("/dashboard/jobs/healthy/").status_code == 200
    admin_page = staff_client.get(f"/admin/jobs/job/{broken.pk}/change/")
    assert admin_page.status_code == 200 and "interval out of range" in admin_page.content.decode()
    admin_list = staff_client.get("/admin/jobs/job/")
    assert admin_list.status_code == 200 and "interval out of range" in admin_list.content.decode()
    status = api.get("/api/jobs/status")
    assert status.status_code == 200
    rows = {row["name"]: row for row in status.json()["jobs"]}
    assert rows["broken"]["next_run"] is None and rows["broken"]["schedule_problem"].startswith("interval out of range")
    assert rows["healthy"]["next_run"] is not None and rows["healthy"]["schedule_problem"] is None
    out = StringIO()
    call_command("jobs", stdout=out)
    listing = {line.split()[0]: line for line in out.getvalue().splitlines()[1:]}
    assert "interval out of range" in listing["broken"] and "never fires" in listing["broken"]
    assert "never fires" not in listing["healthy"]
    assert api.get("/metrics").status_code == 200


def test_it_fires_the_healthy_job_and_nothing_for_the_one_out_of_range(out_of_range_and_healthy):
    healthy, broken = out_of_range_and_healthy
    now = timezone.now()
    Job.objects.update(next_fire_at=now)  # both owed a slot (the broken one from before the UPDATE)
    assert due_jobs_fire(now=now).queued == 1
    assert list(JobRun.objects.values_list("job__name", flat=True)) == ["healthy"]
    assert Job.objects.get(pk=broken.pk).next_fire_at is None
    jobs_process(now=now)


@pytest.mark.parametrize(("start", "end"), [("9999-12-31", "9999-12-31"), ("0001-01-01", "0001-01-02")])
def test_it_refuses_a_backfill_range_past_the_dates_it_can_count(staff_client, make_job, start, end):
    job = make_job("nightly", cron_expression="0 2 * * *")
    response = staff_client.post(f"/dashboard/jobs/{job.name}/backfill", {"start": start, "end": end})
    assert response.status_code == 200 and "Ensure this value is" in response.content.decode()
    assert not JobRun.objects.exists()
