"""purge-logs at scale: old runs go in batches of ids, each its own statement, oldest first,
with the same number of queries however many jobs there are; each job keeps its newest runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.models import JobRun
from jobs.operations.logs import logs_purge

pytestmark = pytest.mark.django_db
NOW = timezone.now()
OLD = NOW - timedelta(days=120)


def old_runs(job, count: int, *, start=OLD, **fields) -> list[int]:
    fields = {"status": "succeeded", "triggered_by": "schedule", **fields}
    made = JobRun.objects.bulk_create(
        JobRun(job=job, created_at=start - timedelta(minutes=count - i), **fields) for i in range(count)
    )
    return [run.pk for run in made] or list(JobRun.objects.filter(job=job).values_list("pk", flat=True))


def run_deletes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].startswith("DELETE") and "jobs_jobrun" in q["sql"]]


def test_it_deletes_old_runs_in_batches_and_keeps_each_jobs_newest(make_job):
    busy, quiet = make_job("busy"), make_job("quiet")
    busy_old = old_runs(busy, 25)
    busy_recent = old_runs(busy, 2, start=NOW)
    quiet_old = old_runs(quiet, 2)  # old, but its only runs: they are its newest
    with CaptureQueriesContext(connection) as captured:
        summary = logs_purge(now=NOW, keep=3, batch_size=10)
    # busy keeps its 3 newest (2 recent, 1 old); quiet keeps both of its old runs.
    assert summary["job_runs"] == 24
    assert set(JobRun.objects.filter(job=busy).values_list("pk", flat=True)) == {*busy_recent, busy_old[-1]}
    assert set(JobRun.objects.filter(job=quiet).values_list("pk", flat=True)) == set(quiet_old)
    assert len(run_deletes(captured.captured_queries)) == 3  # 24 runs in batches of 10


def test_it_never_deletes_an_active_run_however_old(make_job):
    job = make_job("stuck")
    queued = old_runs(job, 1, status="queued")
    old_runs(job, 5, start=NOW)
    assert logs_purge(now=NOW, keep=1, batch_size=10)["job_runs"] == 0
    assert JobRun.objects.filter(pk__in=queued).exists()


def test_it_purges_10_and_100_jobs_in_the_same_queries(make_job):
    def purge_queries(prefix: str, jobs: int) -> int:
        for i in range(jobs):
            old_runs(make_job(f"{prefix}-{i:03d}"), 1000 // jobs + 1)
        with CaptureQueriesContext(connection) as captured:
            summary = logs_purge(now=NOW, keep=1, batch_size=500)
        assert summary["job_runs"] == 1000  # each job keeps its newest
        return len(captured)

    assert purge_queries("few", 10) == purge_queries("many", 100)


def test_it_clears_the_link_from_a_kept_retry_to_a_purged_run(make_job):
    job = make_job("retried")
    first = old_runs(job, 1, status="failed")[0]
    retry = JobRun.objects.create(
        job=job, status="succeeded", triggered_by="retry", attempt=2, retry_of_id=first, created_at=NOW
    )
    assert logs_purge(now=NOW, keep=1, batch_size=10)["job_runs"] == 1
    retry.refresh_from_db()
    assert retry.retry_of_id is None
