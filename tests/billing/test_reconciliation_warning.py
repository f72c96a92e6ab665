"""financial-reconciliation with no payment processor configured did nothing: it must not end as a
plain success. It succeeds with a warning that the run, `manage.py jobs` and /health/ show."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from jobs.models import Job, JobRun
from jobs.running.runner import run_execute, run_trigger

pytestmark = pytest.mark.django_db
WARNING = "no payment processor configured; nothing was reconciled"


def reconcile(**options) -> JobRun:
    defaults = {"command": "financial_reconciliation", "cron_expression": "0 11 * * *"}
    job, _ = Job.objects.get_or_create(name="financial-reconciliation", defaults=defaults)
    trigger = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False, options=options)
    return run_execute(trigger.run.pk)


def test_it_succeeds_with_a_warning_when_no_processor_is_configured(settings, client):
    settings.BILLING_PROCESSOR_BASE_URL = ""
    run = reconcile()
    assert run.status == JobRun.Status.SUCCEEDED
    assert run.warnings == [WARNING]

    out = io.StringIO()
    call_command("jobs", stdout=out)
    assert "succeeded with warnings" in out.getvalue()
    assert f"financial-reconciliation: {WARNING}" in out.getvalue()

    health = client.get("/health/").json()
    assert "warnings" in health["degraded"]
    assert health["checks"]["warnings"]["jobs"] == ["financial-reconciliation"]


def test_it_succeeds_without_warnings_when_given_a_file(settings, tmp_path):
    settings.BILLING_PROCESSOR_BASE_URL = ""
    csv = tmp_path / "settlements.csv"
    csv.write_text("reference,amount,settled_on\n")
    run = reconcile(args=["--file", str(csv)])
    assert run.status == JobRun.Status.SUCCEEDED and run.warnings == []
    assert not Job.objects.get(name="financial-reconciliation").last_run_warnings
