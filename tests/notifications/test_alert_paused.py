"""Quiet while paused: a job paused (``enabled`` off) sends no failure, late or slow alert, on any
channel, and its alerts come back when it is resumed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobRun
from jobs.running import runner
from jobs.running.maintenance import jobs_process
from notifications.alerts.operations import job_lateness_alert
from notifications.models import AlertChannel, AlertDelivery, AlertRoute, Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def ops(settings):
    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]


def alert_kinds() -> list[str]:
    return [template.rsplit("/", 1)[-1] for template in Notification.objects.values_list("template", flat=True)]


def test_it_says_nothing_when_a_run_fails_after_its_job_was_paused(make_job, ops, django_capture_on_commit_callbacks):
    job = make_job("nightly-export", command="test_fail_job")
    channel = AlertChannel.objects.create(name="ops-list", kind=AlertChannel.Kind.EMAIL, recipients="team@example.com")
    AlertRoute.objects.create(channel=channel, job=job)
    with django_capture_on_commit_callbacks(execute=True):
        run = runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run
    Job.objects.filter(pk=job.pk).update(enabled=False)  # paused while the run was queued

    with django_capture_on_commit_callbacks(execute=True):
        finished = runner.run_execute(run.pk, dispatch_retry=False)

    assert finished.status in JobRun.FAILURE_STATUSES
    assert alert_kinds() == [] and not AlertDelivery.objects.exists()
    job.refresh_from_db()
    assert job.alert_state == Job.AlertState.OK


def test_it_alerts_again_once_the_job_is_resumed(make_job, ops, django_capture_on_commit_callbacks):
    job = make_job("nightly-export", command="test_fail_job")
    Job.objects.filter(pk=job.pk).update(enabled=False)
    Job.objects.filter(pk=job.pk).update(enabled=True)  # paused, then resumed
    with django_capture_on_commit_callbacks(execute=True):
        run = runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run
        runner.run_execute(run.pk, dispatch_retry=False)

    assert alert_kinds() == ["failed"]


def test_it_sends_no_late_alert_for_a_job_paused_after_it_was_found_late(make_job, ops):
    job = make_job("hourly-sync", cron_expression="0 * * * *")
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(enabled=False)

    assert job_lateness_alert(job=job, late=True, slot=now - timedelta(hours=2), now=now) == 0
    assert alert_kinds() == []


def test_it_sends_no_slow_alert_for_a_paused_jobs_run(make_job, ops, django_capture_on_commit_callbacks):
    job = make_job("long-report", expected_duration_seconds=60)
    started = timezone.now() - timedelta(minutes=5)
    run = JobRun.objects.create(
        job=job,
        status=JobRun.Status.RUNNING,
        triggered_by=JobRun.Trigger.MANUAL,
        started_at=started,
        heartbeat_at=timezone.now(),
    )
    Job.objects.filter(pk=job.pk).update(enabled=False)

    with django_capture_on_commit_callbacks(execute=True):
        summary = jobs_process()

    assert summary["slow_flagged"] == 1  # still flagged on the run, as the page shows
    run.refresh_from_db()
    assert run.slow
    assert alert_kinds() == []
