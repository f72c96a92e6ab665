"""A mail outage is seen: the process-notifications run succeeds with a warning, /health/'s mail
component is degraded until a drain sends again, and failure alerts are ERROR log lines too."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from jobs.models import JobRun, WebhookHandler
from jobs.running import runner
from jobs.running.execution import Outcome
from notifications.email.mailer import notifications_process
from notifications.models import Notification
from notifications.services import notifications_enqueue_many
from tests.process_group import free_port

from .test_faults_mail_outage import smtp_to  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db


def enqueue(count: int) -> None:
    notifications_enqueue_many(
        messages=[
            {"recipient": f"r{i}@example.com", "template": "notifications/test_message", "context": {}}
            for i in range(count)
        ]
    )


def drain_run(job) -> JobRun:
    trigger = runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False)
    return runner.run_execute(trigger.run.pk)


def test_it_warns_and_degrades_health_while_the_mail_server_refuses_then_recovers(
    smtp_to,  # noqa: F811
    make_job,
    client,
    settings,
):
    smtp_to(free_port())  # nothing listens there: every connection is refused
    enqueue(4)
    job = make_job("process-notifications", command="process_notifications", interval_seconds=30)

    run = drain_run(job)
    assert run.status == JobRun.Status.SUCCEEDED
    [warning] = run.warnings
    assert warning.startswith("mail server refused/unreachable: 4 messages deferred")
    assert "ConnectionRefusedError" in warning
    health = client.get("/health/")
    body = health.json()
    assert health.status_code in (200, 503) and "mail" in body["degraded"]
    assert body["checks"]["mail"]["deferred"] == 4 and body["checks"]["mail"]["failing_since"]
    assert "ConnectionRefused" not in health.content.decode()  # times and counts only

    # The server is back: the messages' retry (a minute later) goes out and the outage is over.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    result = notifications_process(now=timezone.now() + timedelta(minutes=2))
    assert result.sent == 4
    body = client.get("/health/").json()
    assert "mail" not in body["degraded"] and body["checks"]["mail"] == {"ok": True, "degraded": False}
    assert set(Notification.objects.values_list("status", flat=True)) == {Notification.Status.SENT}

    run = drain_run(job)
    assert run.status == JobRun.Status.SUCCEEDED and run.warnings == []


def test_it_shows_the_mail_outage_on_the_dashboard(smtp_to, make_job, admin_client):  # noqa: F811
    smtp_to(free_port())
    enqueue(2)
    notifications_process()
    page = admin_client.get("/dashboard/").content.decode()
    assert 'data-health="mail" class="h-warn"' in page
    assert "2 message(s) deferred" in page


def test_it_logs_every_failure_alert_at_error_level_naming_the_job_and_run_redacted(
    make_job, settings, caplog, django_capture_on_commit_callbacks
):
    from core.crypto import secret_encrypt

    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]
    WebhookHandler.objects.create(
        name="erp", url="https://erp.example.com/x", secret=secret_encrypt("handler-secret-value-42")
    )
    job = make_job("sync-erp")
    error = "login refused for handler-secret-value-42 (password=hunter2)"
    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        run = runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run
        runner.run_claim(run.pk)
        runner.run_finish(run=JobRun.objects.get(pk=run.pk), outcome=Outcome(JobRun.Status.FAILED, error=error))

    [line] = [r for r in caplog.records if r.levelno == logging.ERROR and "job alert" in r.getMessage()]
    message = line.getMessage()
    assert f"job=sync-erp run={run.pk}" in message and "status=failed" in message
    assert "handler-secret-value-42" not in message and "hunter2" not in message
    assert "[redacted]" in message
