"""Failures in a window: a job that fails every other run opens an incident after M failures within
the window (per job, or the settings' default), one message per incident, and recovers only
once its failures have left the window."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import Job, JobRun
from jobs.running import runner
from notifications.models import AlertThreshold, Notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_once(django_capture_on_commit_callbacks):
    def run(job: Job, *, passing: bool = False) -> JobRun:
        Job.objects.filter(pk=job.pk).update(command="test_job" if passing else "test_fail_job")
        job.refresh_from_db()
        with django_capture_on_commit_callbacks(execute=True):
            result = runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False)
            return runner.run_execute(result.run.pk, dispatch_retry=False)

    return run


def emailed(job: Job) -> list[str]:
    rows = Notification.objects.order_by("pk").values_list("template", "context")
    return [template.rsplit("/", 1)[-1] for template, context in rows if context.get("job_name") == job.name]


def age_runs(job: Job, by: timedelta) -> None:
    """Move the job's runs so far back that they leave the window."""
    for run in JobRun.objects.filter(job=job):
        JobRun.objects.filter(pk=run.pk).update(created_at=run.created_at - by)


@pytest.fixture
def ops(settings):
    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]


def test_it_opens_an_incident_at_the_mth_failure_within_the_window_with_passes_between(make_job, run_once, ops):
    job = make_job("flapping-sync", command="test_fail_job")
    AlertThreshold.objects.create(job=job, failures_before_alert=3, failures_in_window=3, window_seconds=3600)

    after_each = []
    for passing in (False, True, False, True, False, True, False, False):
        run_once(job, passing=passing)
        after_each.append(emailed(job))

    assert after_each[:4] == [[], [], [], []]  # never 3 in a row, and only 2 within the hour
    assert after_each[4] == ["failed"]  # the third failure within the hour
    assert after_each[-1] == ["failed"]  # one message per incident: the pass between said nothing


def test_it_recovers_only_when_the_failures_have_left_the_window(make_job, run_once, ops):
    job = make_job("flapping-sync", command="test_fail_job")
    AlertThreshold.objects.create(job=job, failures_before_alert=5, failures_in_window=2, window_seconds=600)
    run_once(job)
    run_once(job, passing=True)
    run_once(job)
    run_once(job, passing=True)
    assert emailed(job) == ["failed"]  # the pass still has 2 failures within its 10 minutes

    age_runs(job, timedelta(minutes=11))
    run_once(job, passing=True)

    assert emailed(job) == ["failed", "recovered"]
    job.refresh_from_db()
    assert job.alert_state == Job.AlertState.OK


def test_it_uses_the_settings_window_for_jobs_without_a_threshold(make_job, run_once, ops, settings):
    settings.NOTIFICATIONS_ALERT_AFTER_FAILURES = 10
    settings.NOTIFICATIONS_ALERT_FAILURES_IN_WINDOW = 2
    settings.NOTIFICATIONS_ALERT_FAILURE_WINDOW_SECONDS = 3600
    job = make_job("flapping-sync", command="test_fail_job")
    quiet = make_job("rarely-failing", command="test_fail_job")

    run_once(job)
    run_once(job, passing=True)
    run_once(job)
    run_once(quiet)
    age_runs(quiet, timedelta(hours=2))
    run_once(quiet, passing=True)
    run_once(quiet)

    assert emailed(job) == ["failed"]
    assert emailed(quiet) == []  # its first failure left the hour before the second came


def test_it_keeps_the_rule_of_failures_in_a_row_when_the_window_is_off(make_job, run_once, ops):
    job = make_job("nightly", command="test_fail_job")
    AlertThreshold.objects.create(job=job, failures_before_alert=2)

    for passing in (False, True, False, True, False, False, True):
        run_once(job, passing=passing)

    assert emailed(job) == ["failed", "recovered"]


def test_it_counts_only_final_failures_within_the_window(make_job, run_once, ops):
    job = make_job("retrying-sync", command="test_fail_job", escalate_after_failures=10)
    AlertThreshold.objects.create(job=job, failures_before_alert=5, failures_in_window=3, window_seconds=3600)
    first = run_once(job)
    # The runner's retry of this failure makes it not final: the retry's own failure counts.
    JobRun.objects.create(
        job=job,
        status=JobRun.Status.FAILED,
        triggered_by=JobRun.Trigger.RETRY,
        attempt=2,
        retry_of=first,
        finished_at=timezone.now(),
    )
    run_once(job)

    assert emailed(job) == []  # two final failures (the retry's and the last), not three
    run_once(job)
    assert emailed(job) == ["failed"]
