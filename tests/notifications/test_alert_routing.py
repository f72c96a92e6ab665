"""Where a job's alerts go: its own channels, its operator group's, its app's, else the default
recipients; a system check when they have nowhere to go; and a mail outage during which a chat
alert still arrives."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.contrib.auth.models import Group
from django.core.checks import run_checks
from django.core.management import call_command

from core.crypto import secret_encrypt
from jobs.models import Job, JobOperatorGroup, JobRun
from jobs.running import runner
from notifications.models import AlertChannel, AlertDelivery, AlertRoute, MailServerState, Notification
from tests.notifications.conftest import Receiver
from tests.process_group import free_port

pytestmark = pytest.mark.django_db
Kind = AlertChannel.Kind


@pytest.fixture
def run_once(django_capture_on_commit_callbacks):
    def run(job: Job) -> JobRun:
        with django_capture_on_commit_callbacks(execute=True):
            result = runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False)
            return runner.run_execute(result.run.pk, dispatch_retry=False)

    return run


def email_channel(name: str, address: str, **fields) -> AlertChannel:
    return AlertChannel.objects.create(name=name, kind=Kind.EMAIL, recipients=address, **fields)


def alerted(job: Job) -> list[str]:
    """Who was e-mailed about ``job``."""
    return sorted(r for r, c in Notification.objects.values_list("recipient", "context") if c["job_name"] == job.name)


def warning_ids() -> list[str]:
    return sorted(m.id for m in run_checks() if m.id.startswith("notifications."))


def test_it_routes_alerts_by_job_group_and_app_and_the_rest_to_the_default(make_job, run_once, settings):
    settings.JOBS_ALERT_RECIPIENTS = ["default@example.com"]
    by_job = make_job("charges", command="test_fail_job")
    by_group = make_job("payouts", command="test_fail_job")
    unrouted = make_job("reports", command="test_fail_job")
    billing_ops = Group.objects.create(name="billing-ops")
    JobOperatorGroup.objects.create(job=by_group, group=billing_ops)
    AlertRoute.objects.create(channel=email_channel("charges-team", "charges@example.com"), job=by_job)
    AlertRoute.objects.create(channel=email_channel("billing-ops", "billing-ops@example.com"), group=billing_ops)

    for job in (by_job, by_group, unrouted):
        run_once(job)
    AlertRoute.objects.create(channel=email_channel("jobs-app", "platform@example.com"), app="jobs")
    by_app = make_job("clean-up", command="test_fail_job")
    run_once(by_app)

    assert alerted(by_job) == ["charges@example.com"]
    assert alerted(by_group) == ["billing-ops@example.com"]
    assert alerted(unrouted) == ["default@example.com"]
    assert alerted(by_app) == ["platform@example.com"]


def test_it_falls_back_to_the_default_when_every_routed_channel_is_inactive(make_job, run_once, settings):
    settings.JOBS_ALERT_RECIPIENTS = ["default@example.com"]
    job = make_job("charges", command="test_fail_job")
    AlertRoute.objects.create(channel=email_channel("old-team", "old@example.com", active=False), job=job)

    run_once(job)

    assert alerted(job) == ["default@example.com"]
    assert "notifications.W012" in warning_ids()


def test_it_warns_when_alerts_have_nowhere_to_go(make_job, settings):
    settings.JOBS_ALERT_RECIPIENTS = []  # and no superuser with an address
    job = make_job("charges", command="test_fail_job")
    by_group = make_job("payouts", command="test_fail_job")
    [nowhere] = [m for m in run_checks() if m.id == "notifications.W010"]
    assert "charges, payouts" in nowhere.msg

    AlertRoute.objects.create(channel=email_channel("team", "team@example.com"), job=job)
    billing_ops = Group.objects.create(name="billing-ops")
    JobOperatorGroup.objects.create(job=by_group, group=billing_ops)
    AlertRoute.objects.create(channel=email_channel("ops", "ops@example.com"), group=billing_ops)
    AlertRoute.objects.create(channel=email_channel("typo", "typo@example.com"), app="biling")

    assert warning_ids() == ["notifications.W011"]


def test_it_delivers_a_chat_alert_while_the_mail_server_is_unreachable(make_job, run_once, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2  # nothing listens
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True
    chat = Receiver()
    try:
        slack = AlertChannel.objects.create(
            name="chat", kind=Kind.SLACK, secret=secret_encrypt(chat.url("/services/T1/B1/outage"))
        )
        job = make_job("charges", command="test_fail_job")
        AlertRoute.objects.create(channel=slack, job=job)
        AlertRoute.objects.create(channel=email_channel("team", "team@example.com"), job=job)

        run_once(job)
        out = StringIO()
        call_command("process_notifications", "--max-seconds", "0", stdout=out)
    finally:
        chat.stop()

    [message] = [json.loads(r.body) for r in chat.requests]
    assert message["text"].startswith(":red_circle: Job charges failed")
    assert AlertDelivery.objects.get(channel=slack).status == AlertDelivery.Status.DELIVERED
    assert list(Notification.objects.values_list("recipient", "status")) == [
        ("team@example.com", Notification.Status.RETRYING)
    ]
    assert MailServerState.objects.get().failing_since is not None
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    assert summary["alert_deliveries"]["delivered"] == 1 and summary["mail_server_unreachable"]
