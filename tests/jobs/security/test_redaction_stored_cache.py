"""The stored secrets a run's output is redacted against are read once per process, and a secret
changed after they were read is masked all the same: at once in the process that saved it, and
in any other process once ``STORED_SECRETS_MAX_AGE`` has passed."""

from __future__ import annotations

import pytest

from core import redaction
from core.crypto import secret_encrypt
from jobs.models import JobRun, WebhookHandler
from jobs.running.runner import run_execute, run_trigger

pytestmark = pytest.mark.django_db

OLD_SECRET = "old-handler-secret-0001"
NEW_SECRET = "new-handler-secret-0002"


def run_printing(job, text: str) -> JobRun:
    job.config = {"print_lines": 0, "summary_kb": 0, "text": text}
    job.save()
    run = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run
    return run_execute(run.pk)


@pytest.fixture
def printing_job(make_job):
    return make_job("prints", command="test_noisy_job")


def test_it_redacts_a_handler_secret_changed_after_the_secrets_were_read(make_handler, printing_job):
    handler = make_handler(secret=OLD_SECRET)
    assert OLD_SECRET not in run_printing(printing_job, OLD_SECRET).output

    handler.secret = secret_encrypt(NEW_SECRET)
    handler.save()
    run = run_printing(printing_job, NEW_SECRET)

    assert run.status == JobRun.Status.SUCCEEDED
    assert NEW_SECRET not in run.output and redaction.MASK in run.output


def test_it_redacts_a_signing_secret_of_an_endpoint_created_after_the_secrets_were_read(printing_job):
    from notifications.models import WebhookEndpoint

    assert "plain-words" in run_printing(printing_job, "plain-words").output
    WebhookEndpoint.objects.create(url="https://hooks.example.com/in", secret="plain-signing-value")

    assert "plain-signing-value" not in run_printing(printing_job, "plain-signing-value").output


def test_it_reads_a_secret_changed_without_a_signal_once_its_age_has_passed(make_handler, printing_job, monkeypatch):
    monkeypatch.setattr(redaction, "STORED_SECRETS_MAX_AGE", 3600.0)
    handler = make_handler(secret=OLD_SECRET)
    run_printing(printing_job, OLD_SECRET)
    # What another process's save looks like here: no signal reaches this process.
    WebhookHandler.objects.filter(pk=handler.pk).update(secret=secret_encrypt(NEW_SECRET))
    assert NEW_SECRET in run_printing(printing_job, NEW_SECRET).output  # still the secrets read before

    monkeypatch.setattr(redaction, "STORED_SECRETS_MAX_AGE", 0.0)

    assert NEW_SECRET not in run_printing(printing_job, NEW_SECRET).output
