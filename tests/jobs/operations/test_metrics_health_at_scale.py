"""/metrics and /health/ cost the same however many jobs and runs exist: the same queries for 30
as for 300 jobs, a scrape whose size does not grow with healthy jobs, and per-job series for the
jobs that need a look (failing, late, running)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.models import Job, JobRun
from jobs.scheduling.leader import beat_heartbeat_write
from tests.jobs.conftest import API_KEY

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("alert_recipients")]


def add_jobs_with_runs(make_job, start: int, count: int) -> None:
    now = timezone.now()
    for i in range(start, start + count):
        job = make_job(f"job-{i:04d}")
        JobRun.objects.bulk_create(
            JobRun(
                job=job,
                status="succeeded",
                triggered_by="schedule",
                created_at=now - timedelta(minutes=minute),
                started_at=now - timedelta(minutes=minute),
                finished_at=now - timedelta(minutes=minute) + timedelta(seconds=2),
                duration=timedelta(seconds=2),
            )
            for minute in range(1, 4)
        )
        Job.objects.filter(pk=job.pk).update(
            last_run_at=now, last_run_status="succeeded", last_success_at=now, last_duration=timedelta(seconds=2)
        )


def scrape(client) -> tuple[str, int]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {API_KEY}")
    assert response.status_code == 200
    return response.content.decode(), len(captured)


def health_queries(client) -> tuple[dict, int]:
    with CaptureQueriesContext(connection) as captured:
        body = client.get("/health/").json()
    return body, len(captured)


def test_it_scrapes_30_and_300_jobs_in_the_same_queries_and_size(client, make_job):
    add_jobs_with_runs(make_job, 0, 30)
    few_text, few_queries = scrape(client)
    add_jobs_with_runs(make_job, 30, 270)
    text, queries = scrape(client)
    assert queries == few_queries
    # The same series; only the values grew (a few digits), not one line per job.
    assert len(text.splitlines()) == len(few_text.splitlines())
    assert len(text) < len(few_text) + 200
    assert 'cronhouse_runs_recent{status="succeeded"} 900.0' in text
    assert 'cronhouse_jobs_last_duration_seconds_bucket{le="5.0"} 300.0' in text


def test_it_names_the_failing_late_and_running_jobs(client, make_job, old_job):
    now = timezone.now()
    failing = make_job("nightly-report")
    Job.objects.filter(pk=failing.pk).update(
        last_run_status="failed", consecutive_failures=3, last_success_at=now - timedelta(days=1)
    )
    old_job("forgotten", cron_expression="* * * * *")
    running = make_job("long-import")
    JobRun.objects.create(job=running, status="running", triggered_by="schedule", started_at=now - timedelta(minutes=5))
    make_job("healthy")
    text = scrape(client)[0]
    assert 'cronhouse_job_failing{job="nightly-report"} 3.0' in text and "cronhouse_jobs_failing 1.0" in text
    assert 'cronhouse_job_last_success_timestamp_seconds{job="nightly-report"}' in text
    assert 'cronhouse_job_late{job="forgotten"} 1.0' in text and "cronhouse_jobs_late 1.0" in text
    assert 'cronhouse_job_running_seconds{job="long-import"} 3' in text and "cronhouse_jobs_running 1.0" in text
    assert 'job="healthy"' not in text


def test_it_caps_each_per_job_series_and_still_counts_them_all(client, make_job, settings):
    settings.JOBS_METRICS_MAX_JOB_SERIES = 2
    for i in range(4):
        job = make_job(f"broken-{i}")
        Job.objects.filter(pk=job.pk).update(last_run_status="failed", consecutive_failures=1)
    text = scrape(client)[0]
    assert "cronhouse_jobs_failing 4.0" in text
    assert text.count("cronhouse_job_failing{") == 2


def test_it_answers_health_in_the_same_queries_for_30_and_300_jobs(client, make_job, old_job):
    beat_heartbeat_write(now=timezone.now())
    old_job("forgotten", cron_expression="* * * * *")
    add_jobs_with_runs(make_job, 0, 30)
    body, few = health_queries(client)
    assert body["checks"]["late_jobs"]["count"] == 1
    for i in range(270):
        old_job(f"late-{i:03d}", cron_expression="* * * * *")
    body, many = health_queries(client)
    assert many == few and body["checks"]["late_jobs"]["count"] == 271


def test_it_does_not_count_a_running_job_as_late(client, old_job):
    job = old_job("forgotten", cron_expression="* * * * *")
    JobRun.objects.create(job=job, status="running", triggered_by="manual", started_at=timezone.now())
    assert client.get("/health/").json()["checks"]["late_jobs"]["count"] == 0
