"""The embedded mode end to end: SQLite (WAL + IMMEDIATE) and kombu's filesystem:// broker,
with beat embedded in one real ``celery -A config worker --beat`` process.

The worker gets this test's SQLite file through DATABASE_URL and the same broker folder
through CRONHOUSE_VAR_DIR (``tests/processes.py``), so a trigger recorded here is published
into the folder the worker consumes, exactly as on a laptop running ``manage.py up``.
"""

from __future__ import annotations

import time

import pytest

from jobs.models import JobRun, LeaderLease
from jobs.running.runner import run_trigger
from tests.process_group import wait_for

pytestmark = [pytest.mark.embedded, pytest.mark.processes, pytest.mark.django_db(transaction=True)]

Status = JobRun.Status
Trigger = JobRun.Trigger
# A cron slot that cannot come round during a test, so the embedded beat never fires the
# jobs these tests trigger by hand (a scheduled run would make the manual trigger a skip).
NEVER_DURING_TEST = "0 0 1 1 *"
WORKER_BOOT_TIMEOUT = 60


def start_worker_with_beat(processes, tmp_path):
    return processes.worker("worker", "--beat", "--schedule", str(tmp_path / "beat-schedule"))


def run_status(run_id: int) -> str:
    return JobRun.objects.values_list("status", flat=True).get(pk=run_id)


def test_manual_trigger_runs_on_the_embedded_worker(make_job, processes, embedded_broker, tmp_path):
    job = make_job("embedded-manual", cron_expression=NEVER_DURING_TEST)
    start_worker_with_beat(processes, tmp_path)

    # Outside any transaction (transactional test), so on_commit publishes inside the call.
    result = run_trigger(job=job, triggered_by=Trigger.MANUAL, options={"as_of": "2026-11-01T06:00:00+00:00"})
    assert result.outcome == "queued"
    run = result.run
    # The message went to the filesystem broker this test shares with the worker.
    assert JobRun.objects.get(pk=run.pk).dispatched_at is not None

    wait_for(
        lambda: run_status(run.pk) not in JobRun.ACTIVE_STATUSES,
        timeout=WORKER_BOOT_TIMEOUT,
        message="the worker to finish the manual run",
    )
    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.error
    assert run.triggered_by == Trigger.MANUAL
    # The command's own summary, received as a dict (not parsed from text), with --as-of passed on.
    assert run.summary == {"ok": True, "as_of": "2026-11-01T06:00:00+00:00"}
    assert "test-job ran as of 2026-11-01T06:00:00+00:00" in run.output
    assert run.worker_pid and run.worker_host
    assert run.started_at and run.finished_at and run.duration is not None
    job.refresh_from_db()
    assert job.last_run_status == Status.SUCCEEDED
    assert job.last_success_at == run.finished_at


def test_embedded_beat_fires_an_interval_job(make_job, processes, embedded_broker, tmp_path):
    interval = 3
    start_worker_with_beat(processes, tmp_path)
    # The job is made once the embedded beat leads: a slot that fell due while the worker booted
    # would be recorded as late as the boot was slow, and the check below is on beat's timing.
    wait_for(
        lambda: LeaderLease.objects.filter(name="beat").exclude(holder="").exists(),
        timeout=WORKER_BOOT_TIMEOUT,
        message="the embedded beat to lead",
    )
    job = make_job("embedded-interval", interval_seconds=interval)

    def finished_scheduled_runs():
        runs = list(JobRun.objects.filter(job=job, status=Status.SUCCEEDED).order_by("scheduled_for"))
        return runs if len(runs) >= 2 else None

    runs = wait_for(
        finished_scheduled_runs, timeout=WORKER_BOOT_TIMEOUT + 4 * interval, message="two scheduled runs to succeed"
    )
    assert all(run.triggered_by == Trigger.SCHEDULE for run in runs)
    slots = [run.scheduled_for for run in runs]
    assert None not in slots
    assert len(set(slots)) == len(slots), "every tick fires its own slot"
    for run in runs:
        # Interval slots are aligned to the epoch so every beat names the same one, and the
        # slot is the moment the tick was for (beat may wake up to 2 s early).
        assert int(run.scheduled_for.timestamp()) % interval == 0
        assert abs((run.created_at - run.scheduled_for).total_seconds()) < interval + 2
        assert run.summary["ok"] is True
    # Nothing but the schedule triggered this job, and nothing ended in another state.
    assert not JobRun.objects.filter(job=job).exclude(triggered_by=Trigger.SCHEDULE).exists()
    assert not JobRun.objects.filter(job=job).exclude(status__in=[Status.SUCCEEDED, *JobRun.ACTIVE_STATUSES]).exists()


def test_second_manual_trigger_while_running_is_skipped_without_blocking(
    make_job, processes, embedded_broker, tmp_path
):
    sleep_seconds = 4.0
    job = make_job(
        "embedded-sleep", command="test_sleep_job", config={"seconds": sleep_seconds}, cron_expression=NEVER_DURING_TEST
    )
    start_worker_with_beat(processes, tmp_path)

    started = time.monotonic()
    first = run_trigger(job=job, triggered_by=Trigger.MANUAL)
    first_call = time.monotonic() - started
    assert first.outcome == "queued"
    # The caller (admin action, dashboard, API) never waits for the job: it only records and publishes.
    assert first_call < 1.0, f"run_trigger took {first_call:.2f}s"

    wait_for(
        lambda: run_status(first.run.pk) == Status.RUNNING,
        timeout=WORKER_BOOT_TIMEOUT,
        interval=0.05,
        message="the worker to start the sleep run",
    )

    started = time.monotonic()
    second = run_trigger(job=job, triggered_by=Trigger.MANUAL)
    second_call = time.monotonic() - started
    assert second_call < 1.0, f"run_trigger took {second_call:.2f}s"
    assert second.outcome == "skipped"
    assert second.run.status == Status.SKIPPED
    assert second.run.blocked_by_id == first.run.pk
    assert second.run.skip_reason == f"run #{first.run.pk} is running"
    assert second.run.finished_at is not None
    # The skip was recorded while the first run was still in progress in the worker.
    assert run_status(first.run.pk) == Status.RUNNING

    wait_for(
        lambda: run_status(first.run.pk) not in JobRun.ACTIVE_STATUSES,
        timeout=sleep_seconds + 30,
        message="the sleep run to end",
    )
    first.run.refresh_from_db()
    assert first.run.status == Status.SUCCEEDED, first.run.error
    assert first.run.summary == {"slept_seconds": sleep_seconds}
    assert first.run.duration.total_seconds() >= sleep_seconds
    # The skipped trigger never ran: the job has exactly these two rows.
    assert sorted(JobRun.objects.filter(job=job).values_list("status", flat=True)) == [
        Status.SKIPPED,
        Status.SUCCEEDED,
    ]
