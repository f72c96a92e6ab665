"""One structured log line per run start and end, JSON when configured, secrets redacted."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from core.redaction import redact
from jobs.models import JobRun
from jobs.running.execution import Outcome
from jobs.running.runlog import JsonFormatter, RedactingFilter
from jobs.running.runner import run_claim, run_finish, run_trigger

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("alert_recipients")]


def _format(record: logging.LogRecord) -> dict:
    RedactingFilter().filter(record)
    return json.loads(JsonFormatter().format(record))


def _record(msg: str, *args, **extra) -> logging.LogRecord:
    record = logging.LogRecord("jobs.running.runner", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_it_turns_the_run_start_line_into_fields():
    line = _format(_record("run started job=%s run=%s attempt=%s", "nightly", 42, 2))
    assert {k: line[k] for k in ("event", "job", "run_id", "attempt", "status")} == {
        "event": "run started",
        "job": "nightly",
        "run_id": 42,
        "attempt": 2,
        "status": "running",
    }


def test_it_logs_the_run_end_with_status_duration_and_attempt(make_job, caplog):
    job = make_job("nightly", expected_duration_seconds=1)
    run = run_claim(run_trigger(job=job, triggered_by="manual", dispatch=False).run.pk)
    run.started_at = timezone.now() - timedelta(seconds=2)
    JobRun.objects.filter(pk=run.pk).update(started_at=run.started_at)
    with caplog.at_level(logging.INFO, logger="jobs.running.runner"):
        run_finish(run=run, outcome=Outcome(status="failed", error="x"), dispatch_retry=False)
    record = next(r for r in caplog.records if r.getMessage().startswith("run finished"))
    line = _format(record)
    assert line["event"] == "run finished" and line["job"] == "nightly" and line["run_id"] == run.pk
    assert line["status"] == "failed" and line["attempt"] == 1 and line["slow"] is True
    assert 2 <= line["duration_seconds"] < 10


def test_it_redacts_secrets_in_every_line():
    line = _format(
        _record(
            "calling %s with Authorization: Bearer abcd.efgh-1234 password=hunter22 api_key=k-99",
            "https://user:pa55word@example.com/hook",
        )
    )
    for secret in ("abcd.efgh-1234", "hunter22", "k-99", "pa55word"):
        assert secret not in json.dumps(line)
    assert "https://user:[redacted]@example.com/hook" in line["message"]
    assert redact("token: 'abc def'") == "token: [redacted]"


def test_it_masks_secret_settings_and_signing_secrets_in_a_log_line(settings):
    settings.STRIPE_API_KEY = "sk_live_0123456789abcdef"
    line = _format(_record("charging with %s, signing with %s", settings.STRIPE_API_KEY, "whsec_abcDEF123_-x"))
    assert line["message"] == "charging with [redacted], signing with [redacted]"


def test_it_masks_a_secret_in_a_logged_traceback():
    """A 500's traceback carries the exception's message: the plain console line must not show it."""
    import sys

    try:
        raise RuntimeError("upstream said: Authorization: Bearer tok_planted_1234567890abcdef")
    except RuntimeError:
        record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error", (), None)
        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    line = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert "Internal Server Error" in line and "RuntimeError" in line
    assert "tok_planted_1234567890abcdef" not in line
