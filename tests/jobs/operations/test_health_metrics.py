"""/health/ (200 or 503 naming what failed) and /metrics (prometheus-client, behind a token)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobRun
from jobs.scheduling.leader import beat_heartbeat_write
from notifications.services import notification_enqueue
from tests.jobs.conftest import API_KEY

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("alert_recipients")]


def test_it_is_unhealthy_without_a_beat_heartbeat_or_a_worker(client):
    response = client.get("/health/")
    body = response.json()
    assert response.status_code == 503
    assert body["failed"] == ["beat", "worker"]
    assert body["checks"]["database"]["ok"] and body["checks"]["broker"]["ok"]


def test_it_is_healthy_with_a_fresh_beat_and_a_recent_run(client, make_job):
    job = make_job("recent")
    now = timezone.now()
    beat_heartbeat_write(now=now - timedelta(seconds=30))
    Job.objects.filter(pk=job.pk).update(last_run_at=now - timedelta(seconds=50))
    response = client.get("/health/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok" and response.json()["checks"]["late_jobs"]["count"] == 0


def test_it_fails_on_a_beat_heartbeat_older_than_two_minutes(client, make_job):
    job = make_job("recent")
    now = timezone.now()
    beat_heartbeat_write(now=now - timedelta(seconds=121))
    Job.objects.filter(pk=job.pk).update(last_run_at=now)
    body = client.get("/health/").json()
    assert body["failed"] == ["beat"] and body["checks"]["beat"]["age_seconds"] >= 121


def test_it_counts_late_jobs_and_fails_on_them_only_when_configured(client, old_job, settings):
    job = old_job("forgotten", cron_expression="* * * * *")
    beat_heartbeat_write(now=timezone.now())
    Job.objects.filter(pk=job.pk).update(last_run_at=timezone.now() - timedelta(minutes=3))
    response = client.get("/health/")
    assert response.status_code == 200 and response.json()["checks"]["late_jobs"]["count"] == 1
    settings.JOBS_HEALTH_MAX_LATE_JOBS = 0
    assert client.get("/health/").json()["failed"] == ["late_jobs"]


def test_it_refuses_metrics_without_the_token(client):
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_it_exports_job_and_queue_metrics(client, make_job, django_user_model):
    job = make_job("exported")
    now = timezone.now()
    JobRun.objects.create(
        job=job,
        triggered_by="manual",
        status="succeeded",
        started_at=now - timedelta(seconds=2),
        finished_at=now,
        duration=timedelta(seconds=2),
    )
    JobRun.objects.create(job=job, triggered_by="manual", status="queued")
    Job.objects.filter(pk=job.pk).update(last_success_at=now)
    notification_enqueue(recipient="a@example.com", template="notifications/test_message", context={})
    text = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {API_KEY}").content.decode()
    assert 'cronhouse_runs_recent{status="succeeded"} 1.0' in text
    assert 'cronhouse_job_run_duration_seconds_bucket{le="5.0"} 1.0' in text
    assert 'cronhouse_job_run_duration_seconds_bucket{le="1.0"} 0.0' in text
    assert "cronhouse_job_run_duration_seconds_gsum 2.0" in text
    assert 'cronhouse_jobs{state="enabled"} 1.0' in text
    # A healthy job has no per-job series: only failing, late and running jobs are named.
    assert 'job="exported"' not in text
    assert "cronhouse_jobs_late 0.0" in text and "cronhouse_jobs_failing 0.0" in text
    assert "cronhouse_runs_queued 1.0" in text
    assert 'cronhouse_notifications{status="queued"} 1.0' in text
    client.force_login(
        django_user_model.objects.create_user("s", password="x-123456789", is_staff=True, is_superuser=True)
    )
    assert client.get("/metrics").status_code == 200
