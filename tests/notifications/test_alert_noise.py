"""Less noise: a threshold of consecutive failures per job (with a default), one message per
incident rather than per run, and a burst across many jobs as one digest message."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from core.crypto import secret_encrypt
from jobs.models import Job, JobRun
from jobs.running import runner
from notifications.channels.sending import alert_deliveries_sweep
from notifications.models import AlertChannel, AlertDelivery, AlertRoute, AlertThreshold, Notification

pytestmark = pytest.mark.django_db
SLACK_PATH = "/services/T1/B1/noise"


@pytest.fixture
def run_once(django_capture_on_commit_callbacks):
    def run(job: Job) -> JobRun:
        with django_capture_on_commit_callbacks(execute=True):
            result = runner.run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False)
            return runner.run_execute(result.run.pk, dispatch_retry=False)

    return run


def passes(job: Job) -> Job:
    Job.objects.filter(pk=job.pk).update(command="test_job")
    job.refresh_from_db()
    return job


def emailed(job: Job) -> list[str]:
    """The alert e-mails about ``job``, oldest first, by kind (the template's last part)."""
    rows = Notification.objects.order_by("pk").values_list("template", "context")
    return [template.rsplit("/", 1)[-1] for template, context in rows if context.get("job_name") == job.name]


@pytest.fixture
def chat(receiver, allow_loopback):
    channel = AlertChannel.objects.create(
        name="chat", kind=AlertChannel.Kind.SLACK, secret=secret_encrypt(receiver.url(SLACK_PATH))
    )
    return channel


def chat_texts(receiver) -> list[str]:
    return [json.loads(r.body)["blocks"][0]["text"]["text"] for r in receiver.requests]


def test_it_alerts_only_when_a_job_reaches_its_threshold_of_consecutive_failures(make_job, run_once, settings):
    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]
    job = make_job("flaky-sync", command="test_fail_job", escalate_after_failures=5)
    AlertThreshold.objects.create(job=job, failures_before_alert=3)

    after_each = []
    for _ in range(5):
        run_once(job)
        after_each.append(emailed(job))
    run_once(passes(job))

    assert after_each == [[], [], ["failed"], ["failed"], ["failed", "escalated"]]
    assert emailed(job) == ["failed", "escalated", "recovered"]


def test_it_says_nothing_of_a_failure_below_the_default_threshold_that_passes_next(make_job, run_once, settings):
    settings.JOBS_ALERT_RECIPIENTS = ["ops@example.com"]
    settings.NOTIFICATIONS_ALERT_AFTER_FAILURES = 2
    job = make_job("flaky-sync", command="test_fail_job")
    other = make_job("broken-sync", command="test_fail_job")

    run_once(job)
    run_once(passes(job))
    run_once(other)
    run_once(other)

    assert emailed(job) == []  # one failure, then a pass: no incident, no recovery either
    assert emailed(other) == ["failed"]


def test_it_sends_one_chat_message_per_incident_not_per_run(make_job, run_once, chat, receiver):
    job = make_job("nightly-report", command="test_fail_job")
    AlertRoute.objects.create(channel=chat, job=job)

    for _ in range(5):
        run_once(job)
    run_once(passes(job))
    alert_deliveries_sweep()

    texts = chat_texts(receiver)
    assert len(texts) == 3
    assert "Job nightly-report failed (run #" in texts[0]
    assert "Job nightly-report failed 3 times in a row" in texts[1]
    assert "Job nightly-report recovered" in texts[2]


def test_it_sends_a_burst_across_many_jobs_as_one_digest(make_job, run_once, chat, receiver):
    AlertRoute.objects.create(channel=chat, app="jobs")  # every test job's app
    jobs = [make_job(f"sync-{n:02}", command="test_fail_job") for n in range(10)]

    for job in jobs:
        run_once(job)
    alert_deliveries_sweep()
    right_away = chat_texts(receiver)
    alert_deliveries_sweep(now=timezone.now() + timedelta(seconds=61))

    assert len(right_away) == 3 and all("failed (run #" in text for text in right_away)
    [digest] = chat_texts(receiver)[3:]
    assert digest.startswith("*:bell: 7 alerts from Cronhouse within a minute*\n")
    for job in jobs[3:]:
        assert f"- Job {job.name} failed (run #" in digest
    statuses = sorted(AlertDelivery.objects.values_list("status", flat=True))
    assert statuses == ["delivered"] * 4 + ["folded"] * 6


def test_it_sends_a_burst_to_an_email_list_as_one_digest_email(make_job, run_once, outbox):
    from notifications.email.mailer import notifications_process

    team = AlertChannel.objects.create(name="team", kind=AlertChannel.Kind.EMAIL, recipients="team@example.com")
    AlertRoute.objects.create(channel=team, app="jobs")
    jobs = [make_job(f"sync-{n:02}", command="test_fail_job") for n in range(6)]

    for job in jobs:
        run_once(job)
    alert_deliveries_sweep(now=timezone.now() + timedelta(seconds=61))
    notifications_process()

    subjects = [message.subject for message in outbox]
    assert len(subjects) == 4 and subjects[3] == "[Cronhouse] 3 job alerts within a minute"
    assert all(subject.startswith("[Cronhouse] Job sync-0") for subject in subjects[:3])
    digest = outbox[3].body
    for job in jobs[3:]:
        assert f"- Job {job.name} failed (run #" in digest
    assert outbox[3].to == ["team@example.com"]
