"""Runs on real Celery workers: retries follow their backoff, a killed worker's run is reaped."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.process_group import run_to_end, wait_for

from .helpers import command_summary, fresh, pid_alive

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.processes,
]

# Workers beat every second; process-jobs calls a run dead after 5 silent seconds.
FAST_HEARTBEAT = {"JOBS_HEARTBEAT_SECONDS": "1"}
REAPER = {"JOBS_HEARTBEAT_TIMEOUT_SECONDS": "5"}
HEARTBEAT_TIMEOUT = timedelta(seconds=5)


def _seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def test_it_retries_a_failing_job_on_a_worker_after_1s_then_2s(processes, seeded_fixtures, start_worker):
    from jobs.models import JobRun
    from jobs.running.runner import run_trigger

    job = seeded_fixtures("test-fail-job", max_retries=2, retry_backoff_seconds=1)
    assert job.consecutive_failures == 0
    start_worker()

    first = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL).run
    assert first.status == JobRun.Status.QUEUED

    # A failure with a retry still to come is not counted yet (attempt 3 is 3 s away at least).
    wait_for(lambda: JobRun.objects.filter(retry_of=first).exists(), timeout=20, message="the first retry")
    job = fresh(job)
    assert (job.last_run_status, job.consecutive_failures) == (JobRun.Status.FAILED, 0)

    def all_attempts_ended():
        runs = list(JobRun.objects.filter(job=job).order_by("attempt"))
        return len(runs) == 3 and not any(run.is_active for run in runs) and runs

    runs = wait_for(all_attempts_ended, timeout=30, message="three finished attempts of test-fail-job")
    assert [run.attempt for run in runs] == [1, 2, 3]
    assert [run.status for run in runs] == [JobRun.Status.FAILED] * 3
    assert [run.triggered_by for run in runs] == [JobRun.Trigger.MANUAL, JobRun.Trigger.RETRY, JobRun.Trigger.RETRY]
    assert runs[1].retry_of_id == runs[0].pk and runs[2].retry_of_id == runs[1].pk
    assert all("test-fail-job failed on purpose" in run.error for run in runs)

    # Backoff 1 s, then 2 s: each retry is due that long after the failure before it ...
    assert runs[1].not_before - runs[0].finished_at == timedelta(seconds=1)
    assert runs[2].not_before - runs[1].finished_at == timedelta(seconds=2)
    # ... and the worker starts it then: not before it is due, and not much later.
    slack = timedelta(milliseconds=100)
    for retry in runs[1:]:
        late = _seconds(retry.started_at - retry.not_before)
        assert retry.started_at >= retry.not_before - slack, f"attempt {retry.attempt} started {-late:.3f}s early"
        assert late < 3.0, f"attempt {retry.attempt} started {late:.3f}s after it was due"
    first_gap = _seconds(runs[1].started_at - runs[0].finished_at)
    second_gap = _seconds(runs[2].started_at - runs[1].finished_at)
    assert 0.9 <= first_gap < 4.0, first_gap
    assert 1.9 <= second_gap < 5.0, second_gap

    # The job failed once from a user's point of view: the final failure is counted once.
    job = fresh(job)
    assert job.consecutive_failures == 1
    assert job.last_run_status == JobRun.Status.FAILED
    assert job.last_run_at == runs[2].started_at
    assert not JobRun.objects.filter(job=job, attempt__gt=3).exists()


def test_it_abandons_the_run_of_a_killed_worker_and_the_job_runs_again(processes, seeded_fixtures, start_worker):
    from jobs.models import JobRun
    from jobs.running.runner import run_trigger

    job = seeded_fixtures("test-sleep-job", config={"seconds": 30}, timeout_seconds=120)
    doomed = start_worker("worker-1", **FAST_HEARTBEAT)

    run = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL).run
    wait_for(
        lambda: fresh(run).status == JobRun.Status.RUNNING and run.heartbeat_at > run.started_at,
        timeout=20,
        message="the run running on worker-1 with a heartbeat after its start",
    )

    # While its worker lives, process-jobs leaves the run alone.
    code, output = run_to_end(processes, "process-jobs", "process_jobs", **REAPER)
    assert code == 0, output
    assert command_summary(output)["abandoned"] == 0
    assert fresh(run).status == JobRun.Status.RUNNING

    worker_pid = run.worker_pid
    processes.kill(doomed)  # SIGKILL to the worker and its pool children
    wait_for(lambda: not pid_alive(worker_pid), timeout=5, message=f"the pool process {worker_pid} to be gone")
    replacement = processes.worker("worker-2", **FAST_HEARTBEAT)

    # Once the heartbeat has been silent for the timeout, process-jobs abandons the run.
    wait_for(
        lambda: timezone.now() - fresh(run).heartbeat_at > HEARTBEAT_TIMEOUT + timedelta(milliseconds=500),
        timeout=15,
        message="the dead run's heartbeat to go silent",
    )
    code, output = run_to_end(processes, "process-jobs", "process_jobs", **REAPER)
    assert code == 0, output
    assert command_summary(output)["abandoned"] == 1
    run = fresh(run)
    assert run.status == JobRun.Status.ABANDONED
    assert "stopped sending heartbeats" in run.error and f"pid {worker_pid}" in run.error
    # Noticed by its silent heartbeat, long before the job's timeout (let alone timeout + grace).
    assert run.finished_at - run.started_at < timedelta(seconds=job.timeout_seconds)
    job = fresh(job)
    assert job.last_run_status == JobRun.Status.ABANDONED
    assert job.consecutive_failures == 1
    assert not JobRun.objects.filter(retry_of=run).exists()  # max_retries=0

    # The job is free again: a new trigger is queued (not skipped) and succeeds on the new worker.
    job.config = {"seconds": 1}
    job.save()
    again = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL)
    assert again.outcome == "queued"
    wait_for(
        lambda: fresh(again.run).status == JobRun.Status.SUCCEEDED,
        timeout=30,
        message="the new run to succeed on worker-2",
    )
    assert again.run.worker_pid != worker_pid
    assert fresh(job).consecutive_failures == 0
    assert replacement.poll() is None


def test_it_retries_an_abandoned_run_on_another_worker(processes, seeded_fixtures, start_worker):
    from jobs.models import JobRun
    from jobs.running.runner import run_trigger

    job = seeded_fixtures(
        "test-sleep-job", config={"seconds": 30}, timeout_seconds=120, max_retries=1, retry_backoff_seconds=1
    )
    doomed = start_worker("worker-1", **FAST_HEARTBEAT)

    run = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL).run
    wait_for(
        lambda: fresh(run).status == JobRun.Status.RUNNING,
        timeout=20,
        message="the run running on worker-1",
    )
    processes.kill(doomed)
    killed_at = timezone.now()
    # The retry should be quick; it reads the job's config when it starts.
    job.config = {"seconds": 1}
    job.save()
    processes.worker("worker-2", **FAST_HEARTBEAT)

    wait_for(
        lambda: timezone.now() - fresh(run).heartbeat_at > HEARTBEAT_TIMEOUT + timedelta(milliseconds=500),
        timeout=15,
        message="the dead run's heartbeat to go silent",
    )
    code, output = run_to_end(processes, "process-jobs", "process_jobs", **REAPER)
    assert code == 0, output
    summary = command_summary(output)
    assert (summary["abandoned"], summary["retried"]) == (1, 1), summary
    run = fresh(run)
    assert run.status == JobRun.Status.ABANDONED

    retry = JobRun.objects.get(retry_of=run)
    assert (retry.attempt, retry.triggered_by) == (2, JobRun.Trigger.RETRY)
    assert retry.not_before == run.finished_at + timedelta(seconds=1)
    wait_for(
        lambda: fresh(retry).status == JobRun.Status.SUCCEEDED,
        timeout=30,
        message="the retry to succeed on worker-2",
    )
    assert retry.started_at >= retry.not_before - timedelta(milliseconds=100)
    assert retry.started_at > killed_at
    assert retry.worker_pid != run.worker_pid
    job = fresh(job)
    assert job.last_run_status == JobRun.Status.SUCCEEDED
    assert job.consecutive_failures == 0
