"""``manage.py up``: the one command that runs Cronhouse on a laptop (web UI + worker with beat),
ending with one banner that stays the last thing on screen."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import requests
from django.conf import settings

from jobs.models import Job, JobRun
from jobs.running.runner import run_trigger
from tests.process_group import wait_for

pytestmark = [pytest.mark.embedded, pytest.mark.processes, pytest.mark.django_db(transaction=True)]

STARTUP_TIMEOUT = 90


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc; zombies count as gone)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if state != "Z":
                parents[int(entry.name)] = int(ppid)
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [child for child, ppid in parents.items() if ppid == parent]
        found += kids
        frontier += kids
    return found


def is_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def login_page(base: str) -> requests.Response | None:
    try:
        response = requests.get(f"{base}/admin/login/", timeout=2)
    except requests.ConnectionError:
        return None
    return response if response.status_code == 200 else None


def run_now(name: str) -> JobRun:
    """Trigger ``name`` as the admin's "Run now" would and wait for up's worker to finish it."""
    job = Job.objects.get(name=name)
    triggered = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL)
    if triggered.outcome == "skipped":  # beat fired this job's slot this very moment
        wait_for(lambda: not JobRun.objects.filter(job=job, status__in=JobRun.ACTIVE_STATUSES).exists(), timeout=30)
        triggered = run_trigger(job=job, triggered_by=JobRun.Trigger.MANUAL)
    assert triggered.outcome == "queued"
    wait_for(
        lambda: JobRun.objects.filter(pk=triggered.run.pk).exclude(status__in=JobRun.ACTIVE_STATUSES).exists(),
        timeout=STARTUP_TIMEOUT,
        message=f"up's worker to finish {name}",
    )
    return JobRun.objects.get(pk=triggered.run.pk)


def banner_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def test_up_serves_admin_runs_jobs_and_stops_its_worker(processes, embedded_broker, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    # Its own var folder (secret key, admin password file), so the test never touches the
    # developer's var/; the broker folder stays the one this test process publishes into.
    var_dir = tmp_path / "up-var"
    up = processes.manage(
        "up",
        "up",
        "--addrport",
        f"127.0.0.1:{port}",
        CRONHOUSE_VAR_DIR=str(var_dir),
        CRONHOUSE_BROKER_DIR=str(settings.BROKER_DIR),
    )
    log = tmp_path / "up.log"

    page = wait_for(lambda: login_page(base), timeout=STARTUP_TIMEOUT, message=f"the admin login page on {base}")
    assert "csrfmiddlewaretoken" in page.text and 'name="password"' in page.text

    # All it printed is one banner: where to open, how to log in, where e-mails and logs go, how to stop.
    # The banner comes once the demo is seeded and its jobs have run against the web server
    # (the demo's stand-ins for Stripe and the API providers are served there).
    wait_for(lambda: "Stop: press Ctrl-C" in log.read_text(), timeout=STARTUP_TIMEOUT, message="the banner")
    banner = banner_lines(log.read_text())
    assert len(banner) == 4, log.read_text()
    assert banner[0].startswith(f"Cronhouse is running: {base}/admin/")
    assert banner[1].startswith("  Log in as admin / ")
    assert f"E-mails: {var_dir / 'mail'}/" in banner[2] and f"Logs: {var_dir / 'log'}/" in banner[2]
    assert banner[3] == "  Stop: press Ctrl-C"

    # It printed the admin login and kept the password in its var folder, not in the repo.
    match = re.search(r"Log in as admin / (\S+)", log.read_text())
    assert match, log.read_text()
    password = match.group(1)
    assert (var_dir / "admin-password").read_text() == password
    assert oct((var_dir / "admin-password").stat().st_mode & 0o777) == "0o600"

    # The printed login works.
    session = requests.Session()
    session.get(f"{base}/admin/login/", timeout=5)
    response = session.post(
        f"{base}/admin/login/?next=/admin/",
        data={
            "username": "admin",
            "password": password,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
            "next": "/admin/",
        },
        timeout=5,
    )
    assert response.status_code == 200 and response.url == f"{base}/admin/", response.text[:500]
    assert "Site administration" in response.text

    # It migrated and seeded this (test) database, without the test fixtures.
    names = set(Job.objects.values_list("name", flat=True))
    assert names >= {"process-jobs", "cleanup-sessions"} and "test-fail-job" not in names

    # Its worker runs a job triggered meanwhile (here from another process, like the admin's "Run now").
    run = run_now("cleanup-sessions")
    assert run.status == JobRun.Status.SUCCEEDED, run.error

    # The demo's e-mails go to files in its var folder, not to the terminal nor into the run's output.
    # up's beat drains the queue every 30 s on its own, so the e-mails may have gone out in its
    # runs rather than in this one: count every drain's, once none is running.
    drain = run_now("process-notifications")
    assert drain.status == JobRun.Status.SUCCEEDED, drain.error
    drains = JobRun.objects.filter(job__name="process-notifications")
    wait_for(lambda: not drains.filter(status__in=JobRun.ACTIVE_STATUSES).exists(), timeout=30)
    finished = list(drains.filter(status=JobRun.Status.SUCCEEDED))
    sent = sum(run.summary.get("sent", 0) for run in finished)
    mail = "".join(path.read_text() for path in (var_dir / "mail").iterdir())
    assert sent > 0 and mail.count("\nSubject: ") == sent and "@demo.cronhouse.test" in mail
    assert all("Subject:" not in run.output for run in finished)
    assert banner_lines(log.read_text()) == banner  # still the last thing on screen

    # The run executed in a process that `up` started (its worker's pool).
    descendants = children_of(up.pid)
    assert run.worker_pid in descendants
    workers = [pid for pid in descendants if " worker " in cmdline(pid) and "celery" in cmdline(pid)]
    assert workers, [cmdline(pid) for pid in descendants]

    # Stop `up` by its PID alone, as a supervisor or `kill <pid>` would: it must take its
    # worker (and the worker's pool and beat) down with it rather than orphan them.
    os.kill(up.pid, signal.SIGTERM)
    try:
        try:
            up.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("up did not exit within 30 s of SIGTERM")
        wait_for(
            lambda: not any(is_alive(pid) for pid in descendants),
            timeout=20,
            message=f"up's children {descendants} to exit",
        )
    finally:
        # ProcessGroup skips a group whose leader has exited; never leave an orphan on the test database.
        for pid in descendants:
            if is_alive(pid):
                os.kill(pid, signal.SIGKILL)
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base}/admin/login/", timeout=2)
