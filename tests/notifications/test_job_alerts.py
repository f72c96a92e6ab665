"""Staff alerts about failing jobs: failure, escalation and recovery, each once, secrets redacted."""

from __future__ import annotations

import pytest

from jobs.models import Job, JobRun, SystemLog, WebhookHandler
from jobs.running import runner
from jobs.running.execution import Outcome
from notifications.email.mailer import notifications_process
from notifications.models import Notification

pytestmark = pytest.mark.django_db
Status = JobRun.Status


@pytest.fixture
def staff(settings):
    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com", "cto@example.com"]
    settings.SITE_URL = "https://cron.example.com"
    return settings.JOBS_ALERT_RECIPIENTS


def run_once(job: Job, capture) -> JobRun:
    """Trigger and execute one run in this process; run_finished fires on commit, as in production."""
    with capture(execute=True):
        result = runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False)
        run = runner.run_execute(result.run.pk, dispatch_retry=False)
    return run


def sent_subjects(outbox) -> list[str]:
    notifications_process()
    subjects = [m.subject for m in outbox if m.to == ["ops@example.com"]]
    outbox.clear()
    return subjects


def test_it_sends_failure_escalation_and_recovery_each_once_for_a_failing_then_passing_job(
    make_job, staff, outbox, django_capture_on_commit_callbacks
):
    job = make_job("nightly-report", command="test_fail_job")
    capture = django_capture_on_commit_callbacks
    subjects = []
    for _ in range(5):
        run_once(job, capture)
        subjects.append(sent_subjects(outbox))
    job.refresh_from_db()
    job.command = "test_job"
    job.save()
    for _ in range(2):
        run_once(job, capture)
        subjects.append(sent_subjects(outbox))

    assert subjects == [
        [f"[Cronhouse] Job nightly-report failed (run #{JobRun.objects.order_by('pk')[0].pk})"],
        [],
        ["[Cronhouse] ESCALATION: job nightly-report failed 3 times in a row"],
        [],
        [],
        ["[Cronhouse] Job nightly-report recovered"],
        [],
    ]
    # Every staff recipient got each message once.
    assert Notification.objects.filter(recipient="cto@example.com").count() == 3
    assert Notification.objects.count() == 6
    job.refresh_from_db()
    assert job.alert_state == Job.AlertState.OK
    assert list(SystemLog.objects.filter(job=job).order_by("id").values_list("event", flat=True)) == [
        "job_alert_failed",
        "job_alert_escalated",
        "job_alert_recovered",
    ]


def test_it_puts_job_run_error_and_a_link_in_the_failure_email(
    make_job, staff, outbox, django_capture_on_commit_callbacks
):
    job = make_job("nightly-report", command="test_fail_job")
    run = run_once(job, django_capture_on_commit_callbacks)
    notifications_process()
    message = next(m for m in outbox if m.to == ["ops@example.com"])
    assert f"https://cron.example.com/admin/jobs/jobrun/{run.pk}/change/" in message.body
    assert "test-fail-job failed on purpose" in message.body
    assert "attempt 1" in message.body and "Duration:" in message.body
    html = message.alternatives[0][0]
    assert f'href="https://cron.example.com/admin/jobs/jobrun/{run.pk}/change/"' in html


def test_it_redacts_secrets_in_the_error_text(make_job, staff, outbox, settings, django_capture_on_commit_callbacks):
    settings.STRIPE_API_KEY = "sk_live_0123456789abcdef"
    from core.crypto import secret_encrypt

    # Stored as the admin stores it: encrypted; the redactor masks the secret itself.
    WebhookHandler.objects.create(
        name="erp", url="https://erp.example.com/x", secret=secret_encrypt("handler-secret-value-42")
    )
    job = make_job("sync-erp")
    error = (
        "Traceback...\nrequests.HTTPError: 401 for https://erp.example.com/x\n"
        "headers={'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig'}\n"
        "connect failed: postgres://app:s3cr3t-pass@db.internal:5432/app password=hunter2 api_key=AKIA1234567\n"
        f"stripe key {settings.STRIPE_API_KEY}; SECRET_KEY={settings.SECRET_KEY}; handler handler-secret-value-42"
    )
    with django_capture_on_commit_callbacks(execute=True):
        run = runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run
        runner.run_claim(run.pk)
        runner.run_finish(run=JobRun.objects.get(pk=run.pk), outcome=Outcome(Status.FAILED, error=error))
    notifications_process()
    body = next(m for m in outbox if m.to == ["ops@example.com"]).body
    for secret in [
        "eyJhbGciOiJIUzI1NiJ9",
        "s3cr3t-pass",
        "hunter2",
        "AKIA1234567",
        "sk_live_0123456789abcdef",
        settings.SECRET_KEY,
        "handler-secret-value-42",
    ]:
        assert secret not in body, secret
    assert "401 for https://erp.example.com/x" in body and "[redacted]" in body


def test_it_does_not_alert_while_a_retry_is_still_to_come(make_job, staff, outbox, django_capture_on_commit_callbacks):
    job = make_job("flaky", command="test_fail_job", max_retries=1, retry_backoff_seconds=1)
    run_once(job, django_capture_on_commit_callbacks)
    assert sent_subjects(outbox) == []
    retry = JobRun.objects.get(status=Status.QUEUED)
    JobRun.objects.filter(pk=retry.pk).update(not_before=None)
    with django_capture_on_commit_callbacks(execute=True):
        runner.run_execute(retry.pk, dispatch_retry=False)
    assert sent_subjects(outbox) == [f"[Cronhouse] Job flaky failed (run #{retry.pk})"]


def test_it_sends_nothing_for_a_job_without_notify_on_failure(
    make_job, staff, outbox, django_capture_on_commit_callbacks
):
    job = make_job("quiet", command="test_fail_job", notify_on_failure=False)
    for _ in range(4):
        run_once(job, django_capture_on_commit_callbacks)
    job.refresh_from_db()
    job.command = "test_job"
    job.save()
    run_once(job, django_capture_on_commit_callbacks)
    assert sent_subjects(outbox) == [] and Notification.objects.count() == 0


def test_it_escalates_at_the_jobs_own_threshold(make_job, staff, outbox, django_capture_on_commit_callbacks):
    job = make_job("touchy", command="test_fail_job", escalate_after_failures=1)
    run_once(job, django_capture_on_commit_callbacks)
    assert sent_subjects(outbox) == ["[Cronhouse] ESCALATION: job touchy failed 1 times in a row"]


def test_it_never_breaks_the_runner_when_alerting_fails(
    make_job, staff, monkeypatch, django_capture_on_commit_callbacks
):
    from notifications.alerts import jobs as alerts

    def broken(**kwargs):
        raise RuntimeError("template store is down")

    monkeypatch.setattr(alerts, "notifications_enqueue_many", broken)
    job = make_job("nightly-report", command="test_fail_job")
    run = run_once(job, django_capture_on_commit_callbacks)
    assert run.status == Status.FAILED


def test_it_sends_no_failure_alert_while_the_job_is_inside_a_blackout_window(
    make_job, staff, outbox, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from jobs.models import BlackoutWindow

    job = make_job("migrating", command="test_fail_job", escalate_after_failures=5)
    now = timezone.now()
    window = BlackoutWindow.objects.create(
        name="db-migration",
        starts_on=(now - timedelta(hours=1)).date(),
        starts_at=(now - timedelta(hours=1)).time(),
        ends_on=(now + timedelta(hours=1)).date(),
        ends_at=(now + timedelta(hours=1)).time(),
    )
    window.jobs.set([job])
    run_once(job, django_capture_on_commit_callbacks)
    assert sent_subjects(outbox) == []
    job.refresh_from_db()
    assert job.alert_state == Job.AlertState.OK
    window.delete()
    run_once(job, django_capture_on_commit_callbacks)  # after the window: reported as usual
    assert len(sent_subjects(outbox)) == 1
