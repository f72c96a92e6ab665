"""A dry run writes nothing, is marked as one everywhere runs are listed, says "would", and is not
the job's last run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from billing.models import LedgerEntry
from jobs.models import JobRun
from jobs.running.runner import run_execute, run_trigger
from tests.jobs.billing_jobs import build, charges_job_create  # noqa: F401  (build: a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def charges_job():
    return charges_job_create()


def run_now(job, **options) -> JobRun:
    result = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, options=options, dispatch=False)
    return run_execute(result.run.pk)


def test_it_keeps_a_dry_run_out_of_the_jobs_last_run_and_says_would(staff_client, build, charges_job):  # noqa: F811
    build.lease(rent="1200.00", due_day=5, start="2024-06-01", end="2040-05-31")
    real = run_now(charges_job, as_of="2025-01-01T06:00:00+00:00")
    assert real.status == JobRun.Status.SUCCEEDED and LedgerEntry.objects.count() == 1
    charges_job.refresh_from_db()
    before = (charges_job.last_run_at, charges_job.last_run_status, charges_job.last_success_at)

    dry = run_now(charges_job, as_of="2025-02-01T06:00:00+00:00", dry_run=True)

    assert dry.status == JobRun.Status.SUCCEEDED and LedgerEntry.objects.count() == 1
    charges_job.refresh_from_db()
    assert (charges_job.last_run_at, charges_job.last_run_status, charges_job.last_success_at) == before
    assert charges_job.last_run_at == real.started_at
    page = staff_client.get(reverse("jobs:run", args=[dry.pk])).content.decode()
    assert "dry run" in page and "would charges_created" in page
    assert "would" not in staff_client.get(reverse("jobs:run", args=[real.pk])).content.decode()
    history = staff_client.get(reverse("jobs:job", args=[charges_job.name])).content.decode()
    assert history.count(">dry run</span>") == 2  # the latest-run card and its row; none for the real run
    as_json = staff_client.get(reverse("jobs:run", args=[dry.pk]), HTTP_ACCEPT="application/json").json()
    assert as_json["dry_run"] is True and as_json["summary"]["charges_created"] == 1
    real_json = staff_client.get(reverse("jobs:run", args=[real.pk]), HTTP_ACCEPT="application/json").json()
    assert real_json["dry_run"] is False


def test_it_does_not_count_a_failed_dry_run_as_a_failure_of_the_job(staff_client, make_job):
    job = make_job("flaky", command="test_fail_job")
    failed = run_now(job, dry_run=True)

    assert failed.status == JobRun.Status.FAILED
    job.refresh_from_db()
    assert (job.last_run_at, job.consecutive_failures) == (None, 0)
    page = staff_client.get(reverse("jobs:failures")).content.decode()
    assert f'data-run="{failed.pk}"' in page and ">dry run</span>" in page


def test_it_still_counts_a_real_run_after_a_dry_one(make_job):
    job = make_job("nightly")
    run_now(job, dry_run=True)
    real = run_now(job, as_of=datetime(2025, 3, 1, tzinfo=UTC).isoformat())
    job.refresh_from_db()
    assert job.last_run_at == real.started_at and job.last_run_status == JobRun.Status.SUCCEEDED
