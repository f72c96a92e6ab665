"""A trigger while the broker is down is kept (queued) and runs once the broker is back.

This test stops Redis, so it starts its own redis-server on a free port and never touches
the shared one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.process_group import run_to_end, wait_for, wait_for_log

from .helpers import command_summary, fresh

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.processes,
]

TRIGGER = """
from jobs.models import Job, JobRun
from jobs.running.runner import run_trigger
result = run_trigger(job=Job.objects.get(name="test-job"), triggered_by=JobRun.Trigger.MANUAL)
print("TRIGGER", result.outcome, result.run.pk)
"""


def test_it_keeps_a_run_triggered_while_redis_is_down_and_runs_it_when_redis_is_back(
    processes, seeded_fixtures, private_redis
):
    from jobs.models import JobRun
    from jobs.running.maintenance import FRESH_RUN_SECONDS

    broker = {"CELERY_BROKER_URL": private_redis.url}
    processes.worker("worker", **broker)
    wait_for_log(processes, "worker", " ready.", timeout=60)

    private_redis.stop()

    # "Run now" while the broker is down: the trigger succeeds and the run is recorded, not sent.
    code, output = run_to_end(processes, "trigger", "shell", "-c", TRIGGER, **broker)
    assert code == 0, output
    line = next(line for line in output.splitlines() if line.startswith("TRIGGER "))
    _, outcome, run_id = line.split()
    assert outcome == "queued"
    assert f"dispatch failed run={run_id}" in output
    run = JobRun.objects.get(pk=run_id)
    assert (run.status, run.dispatched_at) == (JobRun.Status.QUEUED, None)

    # process-jobs cannot send it either while Redis is away; the run stays queued, not lost.
    # (It first waits out the few seconds in which a new run's own publish may be in flight.)
    wait_for(
        lambda: timezone.now() - run.created_at > timedelta(seconds=FRESH_RUN_SECONDS),
        timeout=FRESH_RUN_SECONDS + 2,
    )
    code, output = run_to_end(processes, "process-jobs", "process_jobs", **broker)
    assert code == 0, output
    assert command_summary(output)["dispatch_failed"] == 1
    assert (fresh(run).status, run.dispatched_at) == (JobRun.Status.QUEUED, None)

    # Redis is back: the next process-jobs sends the run and the worker (which reconnects) runs it.
    private_redis.start()
    back_at = timezone.now()
    code, output = run_to_end(processes, "process-jobs", "process_jobs", **broker)
    assert code == 0, output
    assert command_summary(output)["dispatched"] == 1
    assert fresh(run).dispatched_at is not None
    wait_for(
        lambda: fresh(run).status == JobRun.Status.SUCCEEDED,
        timeout=60,
        interval=0.5,
        message="the run to succeed after Redis came back",
    )
    assert run.started_at - back_at < timedelta(seconds=60)
    assert JobRun.objects.filter(job=run.job).count() == 1  # sent once, run once
