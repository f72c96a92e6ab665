"""Queues and jitter on real Celery workers: a job's runs are taken only by a worker started
with ``-Q`` for its queue, and a jittered slot starts at its offset, not before."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.process_group import wait_for, wait_for_log

from .helpers import fresh

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.processes,
]

QUEUES = {"JOBS_QUEUES": "slow"}


def parent_pid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def ended(run):
    run = fresh(run)
    return run if run.finished_at else None


def test_it_runs_a_job_on_queue_slow_only_on_a_worker_started_with_q_slow(
    processes, seeded_fixtures, redis_broker, settings
):
    from jobs.models import JobRun
    from jobs.running.runner import run_trigger

    settings.JOBS_QUEUES = ["slow"]
    slow_job = seeded_fixtures("test-sleep-job", queue="slow", config={"seconds": 1})
    fast_job = seeded_fixtures("test-job")
    default_worker = processes.worker("default", **QUEUES)
    wait_for_log(processes, "default", " ready.", timeout=60)

    slow = run_trigger(job=slow_job, triggered_by=JobRun.Trigger.MANUAL).run
    fast = run_trigger(job=fast_job, triggered_by=JobRun.Trigger.MANUAL).run
    fast = wait_for(lambda: ended(fast), timeout=30, message="test-job's run on the default worker")
    assert fast.status == JobRun.Status.SUCCEEDED
    assert parent_pid(fast.worker_pid) == default_worker.pid
    # The default queue's worker has taken everything it will; the slow queue's run still waits.
    wait_for_log(processes, "default", f"run finished job=test-job run={fast.pk}", timeout=10)
    time.sleep(2)
    assert fresh(slow).status == JobRun.Status.QUEUED

    slow_worker = processes.worker("slow", "-Q", "slow", **QUEUES)
    slow = wait_for(lambda: ended(slow), timeout=60, message="test-sleep-job's run on the -Q slow worker")
    assert slow.status == JobRun.Status.SUCCEEDED
    assert parent_pid(slow.worker_pid) == slow_worker.pid
    assert f"run={slow.pk}" not in processes.log_dir.joinpath("default.log").read_text()


def test_it_starts_a_jittered_slot_at_its_offset_on_a_worker(processes, seeded_fixtures, start_worker):
    from jobs.models import Job, JobRun
    from jobs.scheduling.firing import due_jobs_fire

    job = seeded_fixtures("test-job", cron_expression="* * * * *", jitter_seconds=4)
    start_worker()
    slot = timezone.now().replace(microsecond=0) + timedelta(seconds=1)
    Job.objects.filter(pk=job.pk).update(next_fire_at=slot)
    # The seeded jobs' next minute may have come while the worker started; only this slot is due.
    Job.objects.exclude(pk=job.pk).update(next_fire_at=slot + timedelta(days=1))
    assert due_jobs_fire(now=slot).queued == 1
    run = JobRun.objects.get(job=job, scheduled_for=slot)
    assert run.not_before == slot + job.jitter_offset
    run = wait_for(lambda: ended(run), timeout=30, message="the jittered run")
    assert run.status == JobRun.Status.SUCCEEDED
    late = (run.started_at - run.not_before).total_seconds()
    assert -0.1 <= late < 3.0, f"started {late:.3f}s after its jittered start"
    # Its command ran for the slot, not for the moment it started.
    assert run.scheduled_for == slot
