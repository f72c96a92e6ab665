"""Every trigger goes through the runner: the queued row, the recorded skip naming the active run,
the caller's transaction kept usable after a conflict and rolled back with it."""

from __future__ import annotations

import pytest
from django.db import transaction

from jobs.models import JobRun
from jobs.running.runner import run_trigger

pytestmark = pytest.mark.django_db
API = JobRun.Trigger.API


def test_it_records_a_skip_naming_the_active_run_through_the_api(api, make_job):
    make_job("nightly")
    first = api.post("/api/jobs/run", {"job": "nightly"}).json()["run_id"]
    second = api.post("/api/jobs/run", {"job": "nightly"})
    assert second.status_code == 409
    skipped = JobRun.objects.get(pk=second.json()["skipped_run_id"])
    assert skipped.status == JobRun.Status.SKIPPED and skipped.blocked_by_id == first
    assert skipped.skip_reason == f"run #{first} is queued" and skipped.triggered_by == API


def test_it_keeps_the_callers_transaction_usable_after_a_conflict(make_job):
    job = make_job("nightly")
    with transaction.atomic():
        first = run_trigger(job=job, triggered_by=API)
        second = run_trigger(job=job, triggered_by=API)
        # Neither the conflict nor the recorded skip broke the transaction.
        assert JobRun.objects.count() == 2
    assert (first.outcome, second.outcome) == ("queued", "skipped")
    assert JobRun.objects.get(pk=second.run.pk).blocked_by_id == first.run.pk


def test_it_rolls_back_with_the_callers_transaction(make_job):
    job = make_job("nightly")
    with pytest.raises(RuntimeError), transaction.atomic():
        run_trigger(job=job, triggered_by=API)
        raise RuntimeError("caller failed")
    assert not JobRun.objects.exists()


def test_it_puts_the_script_prefix_in_the_location(api, make_job):
    from django.urls import set_script_prefix

    make_job("a")
    # The test client, unlike WSGIHandler, does not set the prefix from SCRIPT_NAME.
    set_script_prefix("/cron/")
    try:
        mounted = api.post("/api/jobs/run", {"job": "a"})
    finally:
        set_script_prefix("/")
    assert mounted["Location"] == f"/cron/api/runs/{mounted.json()['run_id']}" == mounted.json()["url"]
