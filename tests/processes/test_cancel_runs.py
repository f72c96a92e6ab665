"""Cancel on a real worker: a running command stops at its next progress step; one that ignores its
cancel is killed after the grace with every process it started; a queued run cancelled before a
worker takes its message never starts."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from jobs.models import Job, JobRun
from jobs.running.cancels import cancel_request
from jobs.running.execution import CANCELLED_ERROR
from jobs.running.runner import run_trigger
from tests.process_group import wait_for, wait_for_log

from .helpers import fresh, pid_alive

pytestmark = [pytest.mark.processes, pytest.mark.django_db(transaction=True)]

STARTUP_TIMEOUT = 90
# A cancel is read at the heartbeat (every half second here) and a run ignoring it is killed
# after the grace (2 s here); this leaves room for a loaded machine.
CANCEL_TIMEOUT = 30
FAST_CANCEL = {"JOBS_HEARTBEAT_SECONDS": "0.5", "JOBS_CANCEL_GRACE_SECONDS": "2"}


@pytest.fixture
def cancel_worker(processes, broker_emptied):
    """A worker that reads cancels every half second and kills after a 2 s grace."""
    proc = processes.worker("worker", **FAST_CANCEL)
    wait_for_log(processes, "worker", " ready.", timeout=STARTUP_TIMEOUT)
    return proc


def sleeper(seeded_fixtures, pid_file: Path, **config) -> Job:
    settings = {"seconds": 120, "child_seconds": 300, "child_pid_file": str(pid_file), **config}
    return seeded_fixtures("test-sleep-job", config=settings, timeout_seconds=300, max_retries=2)


def started(job: Job) -> JobRun:
    run = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL).run
    wait_for(lambda: fresh(run).status == JobRun.Status.RUNNING, timeout=STARTUP_TIMEOUT, message="the run to start")
    return fresh(run)


def child_of(pid_file: Path) -> int:
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=STARTUP_TIMEOUT, message="the run's child")
    pid = int(pid_file.read_text())
    assert pid_alive(pid)
    return pid


def ended(run: JobRun) -> JobRun:
    wait_for(lambda: not fresh(run).is_active, timeout=CANCEL_TIMEOUT, message=f"run {run.pk} to end")
    return fresh(run)


def test_it_stops_a_running_command_at_its_next_progress_step(cancel_worker, seeded_fixtures, tmp_path):
    pid_file = tmp_path / "child.pid"
    run = started(sleeper(seeded_fixtures, pid_file))
    child = child_of(pid_file)

    cancel_request(run=run, who="a test", reason="stop it")
    run = ended(run)

    assert run.status == JobRun.Status.CANCELLED and run.error == CANCELLED_ERROR
    assert (run.cancelled_by, run.cancel_reason) == ("a test", "stop it")
    assert not pid_alive(child)
    assert pid_alive(run.worker_pid)  # it stopped by itself: its pool process lives on
    assert JobRun.objects.filter(job=run.job).count() == 1  # never retried


def test_it_kills_a_running_command_that_ignores_its_cancel_and_leaves_no_child(
    cancel_worker, seeded_fixtures, tmp_path
):
    pid_file = tmp_path / "child.pid"
    job = sleeper(seeded_fixtures, pid_file, ignore_cancel=True)
    run = started(job)
    child = child_of(pid_file)
    tree_before = {process.pid for process in psutil.Process(cancel_worker.pid).children(recursive=True)}
    assert child in tree_before and run.worker_pid in tree_before
    # Held as processes (PID and start time): a new pool process may reuse the PID.
    pool, sleeping = psutil.Process(run.worker_pid), psutil.Process(child)

    cancel_request(run=run, who="a test", reason="ignores everything")
    run = ended(run)

    assert run.status == JobRun.Status.CANCELLED, run.error
    assert "killed" in run.error
    wait_for(lambda: not sleeping.is_running(), timeout=10, message="the run's child to be gone")
    wait_for(lambda: not pool.is_running(), timeout=10, message="the pool process to be gone")
    assert JobRun.objects.filter(job=job).count() == 1  # never retried
    job.refresh_from_db()
    assert job.consecutive_failures == 0

    # The worker carries on with a new pool process: the next run of the job succeeds.
    job.config = {"seconds": 0.2}
    job.save()
    after = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL).run
    wait_for(lambda: not fresh(after).is_active, timeout=STARTUP_TIMEOUT, message="the next run to end")
    assert fresh(after).status == JobRun.Status.SUCCEEDED
    # Nothing of the killed run is left under the worker (a new pool process may reuse a PID).
    left = psutil.Process(cancel_worker.pid).children(recursive=True)
    assert not [process for process in left if process.name() == "sleep"]


def test_it_never_starts_a_queued_run_that_was_cancelled(processes, broker_emptied, seeded_fixtures):
    job = seeded_fixtures("test-job", max_retries=2)
    run = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL).run  # its message waits in the broker
    assert cancel_request(run=run, who="a test", reason="not today").outcome == "cancelled"

    processes.worker("worker", **FAST_CANCEL)
    wait_for_log(processes, "worker", " ready.", timeout=STARTUP_TIMEOUT)
    other = seeded_fixtures("test-fail-job", max_retries=0)
    later = run_trigger(job=other, triggered_by=JobRun.Trigger.MANUAL).run
    wait_for(lambda: not fresh(later).is_active, timeout=STARTUP_TIMEOUT, message="a later run to end")

    run = fresh(run)
    assert run.status == JobRun.Status.CANCELLED and run.started_at is None
    log = (processes.log_dir / "worker.log").read_text(errors="replace")
    assert f"run started job={job.name} run={run.pk} " not in log
    assert JobRun.objects.filter(job=job).count() == 1


def test_it_stops_a_runjob_command_that_is_cancelled_and_ends_its_child(processes, seeded_fixtures, tmp_path):
    pid_file = tmp_path / "child.pid"
    job = sleeper(seeded_fixtures, pid_file)
    runjob = processes.manage("runjob", "runjob", job.name, **FAST_CANCEL)
    wait_for(
        lambda: JobRun.objects.filter(job=job, status=JobRun.Status.RUNNING).exists(),
        timeout=STARTUP_TIMEOUT,
        message="runjob's run to start",
    )
    run = JobRun.objects.get(job=job)
    child = child_of(pid_file)

    cancel_request(run=run, who="a test", reason="from another shell")
    assert runjob.wait(timeout=CANCEL_TIMEOUT) == 1  # not succeeded
    run = fresh(run)
    assert run.status == JobRun.Status.CANCELLED and run.error == CANCELLED_ERROR
    assert not pid_alive(child)
    assert f"run #{run.pk} cancelled" in (processes.log_dir / "runjob.log").read_text(errors="replace")
