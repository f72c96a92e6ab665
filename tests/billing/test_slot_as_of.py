"""A scheduled run does the work of its own slot: generate-charges booked to 1 February and run
in March (late, retried or caught up after downtime) charges February, not March."""

from __future__ import annotations

from datetime import date

import pytest
from django.utils import timezone

from billing.models import LedgerEntry
from jobs.models import Job, JobRun
from jobs.running.runner import run_execute
from jobs.scheduling.firing import due_jobs_fire
from tests.job_commands import at
from tests.scheduling import owe_since

pytestmark = pytest.mark.django_db


@pytest.fixture
def charges_job():
    job = Job(name="generate-charges", command="generate_charges", cron_expression="0 6 1 * *", catch_up="all")
    job.full_clean()
    job.save()
    Job.objects.filter(pk=job.pk).update(schedule_changed_at=at("2025-01-01"))
    return owe_since(job, at("2025-01-01"))


def test_it_charges_the_slots_month_when_caught_up_after_downtime(build, charges_job):
    lease = build.lease(rent="1200.00", due_day=5, start="2024-06-01", end="2026-05-31")
    # Beat was away from late January to 2 March: its first tick catches up the oldest missed slot.
    assert due_jobs_fire(now=at("2025-03-02", hour=9)).queued == 1
    run = JobRun.objects.get(job=charges_job)
    assert run.scheduled_for == at("2025-02-01", hour=6)
    finished = run_execute(run.pk)
    assert finished.status == JobRun.Status.SUCCEEDED, finished.error
    due_dates = list(LedgerEntry.objects.filter(lease=lease, kind="charge").values_list("due_date", flat=True))
    assert due_dates == [date(2025, 2, 5)]
    assert timezone.now().date() > date(2025, 3, 1)  # the clock itself is far past both slots


def test_it_charges_the_current_month_when_run_by_hand(build, charges_job):
    lease = build.lease(rent="1200.00", due_day=5, start="2024-06-01", end="2040-05-31")
    run = JobRun.objects.create(job=charges_job, triggered_by=JobRun.Trigger.MANUAL)
    assert run_execute(run.pk).status == JobRun.Status.SUCCEEDED
    (due,) = LedgerEntry.objects.filter(lease=lease, kind="charge").values_list("due_date", flat=True)
    today = timezone.now().date()
    assert (due.year, due.month) == (today.year, today.month)
