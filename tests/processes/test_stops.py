"""A run is a process tree, and stops are clean: what a job's command started ends with its run
(time limit, worker shutdown), and Ctrl-C on ``manage.py up`` in a real terminal leaves no
process behind and the leader lease free for the next start."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from jobs.models import Job, JobRun, LeaderLease
from jobs.running.runner import run_trigger
from tests.process_group import BASE_DIR, free_port, process_env, wait_for

from .helpers import fresh, pid_alive

pytestmark = [pytest.mark.embedded, pytest.mark.processes, pytest.mark.django_db(transaction=True)]

STARTUP_TIMEOUT = 90


# A cron slot that cannot come round during a test. test-sleep-job's own (minute 30 of every
# hour) can pass while a beat runs, up's start alone takes up to a minute and a half, and the
# run of that slot, if still running, makes the test's trigger a skip.
NEVER_DURING_TEST = "0 0 1 1 *"


def sleep_job_with_child(tune, pid_file: Path, *, seconds: int, timeout: int = 120) -> Job:
    """test-sleep-job, set to start ``sleep 300`` in a session of its own, then sleep ``seconds``;
    triggered by hand only."""
    config = {"seconds": seconds, "child_seconds": 300, "child_pid_file": str(pid_file)}
    return tune(
        "test-sleep-job", config=config, timeout_seconds=timeout, max_retries=0, cron_expression=NEVER_DURING_TEST
    )


def run_now(job: Job) -> JobRun:
    triggered = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL)
    assert triggered.outcome == "queued", triggered.outcome
    return triggered.run


def child_pid(pid_file: Path) -> int:
    wait_for(lambda: pid_file.exists() and pid_file.read_text(), timeout=STARTUP_TIMEOUT, message="the run's child")
    pid = int(pid_file.read_text())
    assert pid_alive(pid) and "sleep" in psutil.Process(pid).name()
    return pid


def ended(run: JobRun, timeout: float) -> JobRun:
    wait_for(lambda: fresh(run).status not in JobRun.ACTIVE_STATUSES, timeout=timeout, message=f"run {run.pk} to end")
    return fresh(run)


def lease_holder() -> str:
    return LeaderLease.objects.filter(name="beat").values_list("holder", flat=True).first() or ""


def test_it_ends_the_processes_a_timed_out_run_started(processes, embedded_broker, seeded_fixtures, tmp_path):
    pid_file = tmp_path / "child.pid"
    job = sleep_job_with_child(seeded_fixtures, pid_file, seconds=60, timeout=3)
    processes.worker("worker")
    run = run_now(job)
    sleeper = child_pid(pid_file)

    run = ended(run, timeout=STARTUP_TIMEOUT)
    assert run.status == JobRun.Status.TIMED_OUT, run.error
    # Gone by the time the run is recorded: the run's end ends its processes.
    assert not pid_alive(sleeper)


def test_it_ends_a_process_whose_parent_left_when_the_run_succeeds(
    processes, embedded_broker, seeded_fixtures, tmp_path
):
    pid_file = tmp_path / "child.pid"
    job = sleep_job_with_child(seeded_fixtures, pid_file, seconds=2)
    job.config["orphan_child"] = True  # started by a shell that exits at once
    job.save()
    processes.worker("worker")
    run = run_now(job)
    sleeper = child_pid(pid_file)

    run = ended(run, timeout=STARTUP_TIMEOUT)
    assert run.status == JobRun.Status.SUCCEEDED, run.error
    assert not pid_alive(sleeper)


def test_it_stops_a_run_in_flight_and_its_processes_when_the_worker_stops(
    processes, embedded_broker, seeded_fixtures, tmp_path
):
    pid_file = tmp_path / "child.pid"
    job = sleep_job_with_child(seeded_fixtures, pid_file, seconds=60)
    worker = processes.worker("worker", "--beat", JOBS_STOP_GRACE_SECONDS="3")
    run = run_now(job)
    sleeper = child_pid(pid_file)
    wait_for(lambda: lease_holder(), timeout=30, message="the worker's beat to lead")
    tree = [p.pid for p in psutil.Process(worker.pid).children(recursive=True)]
    assert sleeper in tree and len(tree) >= 3  # pool processes, beat, the run's child

    started = time.monotonic()
    os.kill(worker.pid, signal.SIGTERM)  # a supervisor's stop
    worker.wait(timeout=40)
    assert time.monotonic() - started < 30  # the grace (3 s), not the run's 60 s

    run = fresh(run)
    assert run.status == JobRun.Status.ABANDONED
    assert run.error.startswith("Stopped before it ended")
    wait_for(lambda: not any(pid_alive(pid) for pid in tree), timeout=5, message=f"{tree} to exit")
    # Its beat gave the lease up on the way out: the next start leads at once.
    assert lease_holder() == ""


class Terminal:
    """A tmux session on a server of its own: a real terminal, where Ctrl-C is the tty's SIGINT
    to the foreground process group."""

    def __init__(self, name: str) -> None:
        self.name = name

    def tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-L", self.name, *args], capture_output=True, text=True, check=True).stdout

    def start(self, command: str) -> int:
        self.tmux("new-session", "-d", "-s", self.name, "-x", "200", "-y", "50", command)
        self.tmux("set-option", "-t", self.name, "remain-on-exit", "on")
        return int(self.tmux("display-message", "-p", "-t", self.name, "#{pane_pid}"))

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.name)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True)


def up_command(port: int, var_dir: Path, **extra: str) -> str:
    env = process_env(CRONHOUSE_VAR_DIR=str(var_dir), CRONHOUSE_BROKER_DIR=str(settings.BROKER_DIR), **extra)
    assignments = " ".join(f"{key}={shlex.quote(value)}" for key, value in env.items() if key.isidentifier())
    argv = [sys.executable, "manage.py", "up", "--addrport", f"127.0.0.1:{port}"]
    return f"cd {shlex.quote(str(BASE_DIR))} && exec env -i {assignments} {shlex.join(argv)}"


def test_it_leaves_nothing_running_after_ctrl_c_on_up_during_a_run(embedded_broker, seeded_fixtures, tmp_path):
    pid_file = tmp_path / "child.pid"
    var_dir = tmp_path / "up-var"
    terminal = Terminal(f"cronhouse-stops-{os.getpid()}")
    tree: list[int] = []
    # Before up starts: its beat fires what is due while the rest of up is still starting.
    job = sleep_job_with_child(seeded_fixtures, pid_file, seconds=45)
    try:
        up = terminal.start(up_command(free_port(), var_dir, JOBS_STOP_GRACE_SECONDS="5"))
        wait_for(lambda: "Stop: press Ctrl-C" in terminal.screen(), timeout=STARTUP_TIMEOUT, message="up's banner")
        wait_for(lambda: lease_holder(), timeout=30, message="up's beat to lead")
        run = run_now(job)
        sleeper = child_pid(pid_file)
        tree = [p.pid for p in psutil.Process(up).children(recursive=True)]
        assert sleeper in tree

        terminal.tmux("send-keys", "-t", terminal.name, "C-c")
        wait_for(lambda: not pid_alive(up), timeout=40, message="up to exit after Ctrl-C")
        assert not [pid for pid in tree if pid_alive(pid)]
        assert "Stopping" in terminal.screen()

        # The run in flight ended with what happened to it; nothing else was abandoned, nothing
        # is booked once up is gone, and the lease is free: the next start leads at once.
        run = fresh(run)
        assert run.status == JobRun.Status.ABANDONED and run.error.startswith("Stopped before it ended")
        others = JobRun.objects.exclude(pk=run.pk)
        assert not others.filter(status=JobRun.Status.ABANDONED).exists()
        assert lease_holder() == ""
        runs = JobRun.objects.count()
        time.sleep(3)
        assert JobRun.objects.count() == runs

    finally:
        terminal.close()
        for pid in tree:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
