"""The run lifecycle's database rules: one retry per run, reaped runs counted, each run's own
options."""

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from jobs.models import JobRun
from jobs.running.maintenance import runs_sweep
from jobs.running.runner import run_execute, run_trigger

pytestmark = pytest.mark.django_db
Status = JobRun.Status


def test_it_allows_one_retry_per_run(make_job):
    job = make_job()
    failed = JobRun.objects.create(job=job, triggered_by=JobRun.Trigger.MANUAL, status=Status.FAILED)
    JobRun.objects.create(job=job, triggered_by=JobRun.Trigger.RETRY, status=Status.FAILED, retry_of=failed, attempt=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        JobRun.objects.create(job=job, triggered_by=JobRun.Trigger.RETRY, status=Status.QUEUED, retry_of=failed)


def test_it_counts_reaped_runs_without_a_retry_as_not_retried(make_job):
    job = make_job(max_retries=0)
    long_ago = timezone.now() - timedelta(hours=3)
    JobRun.objects.create(
        job=job, triggered_by=JobRun.Trigger.MANUAL, status=Status.RUNNING, started_at=long_ago, heartbeat_at=long_ago
    )
    result = runs_sweep(now=timezone.now())
    assert (result["abandoned"], result["retried"]) == (1, 0)


def test_it_gives_each_run_its_own_config_and_options(make_job):
    job = make_job("sleeper", command="test_sleep_job", config={"seconds": 0.01})
    first = run_execute(run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run.pk)
    job.config = {"seconds": 0.02}
    job.save()
    second = run_execute(run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL, dispatch=False).run.pk)
    third = run_execute(
        run_trigger(
            job=make_job("plain", command="test_sleep_job", config={"seconds": 0.0}),
            triggered_by=JobRun.Trigger.MANUAL,
            dispatch=False,
        ).run.pk
    )
    assert [run.status for run in (first, second, third)] == [Status.SUCCEEDED] * 3
    assert (first.summary["slept_seconds"], second.summary["slept_seconds"]) == (0.01, 0.02)
    assert third.summary["slept_seconds"] == 0.0
