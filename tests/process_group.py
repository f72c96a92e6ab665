"""Start real Cronhouse processes (worker, beat, runjob) against the test database.

Every process starts in its own session and is stopped by PID (its whole process group)
when the test ends, pass or fail. Each process writes its log to the test's tmp folder,
and a failing test prints the tails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.db import connection

BASE_DIR = Path(settings.BASE_DIR)


def test_database_url() -> str:
    """The URL of the database this test uses (pytest-django's test database, not the dev one)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def process_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=test_database_url(),
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
        CRONHOUSE_VAR_DIR=str(settings.VAR_DIR),
    )
    env.update(overrides)
    return env


class ProcessGroup:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, argv: list[str], **env_overrides: str) -> subprocess.Popen:
        log = self.log_dir / f"{name}.log"
        handle = log.open("ab")
        proc = subprocess.Popen(
            argv,
            cwd=BASE_DIR,
            env=process_env(**env_overrides),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() reaches pool children too
        )
        self.started.append((name, proc, log))
        return proc

    def manage(self, name: str, *args: str, **env_overrides: str) -> subprocess.Popen:
        return self.start(name, [sys.executable, "manage.py", *args], **env_overrides)

    def worker(self, name: str = "worker", *extra: str, **env_overrides: str) -> subprocess.Popen:
        argv = [
            sys.executable,
            *"-m celery -A config worker".split(),
            "--loglevel",
            "INFO",
            "--concurrency",
            "2",
            "--hostname",
            f"{name}@%h",
            "--without-gossip",
            "--without-mingle",
            *extra,
        ]
        return self.start(name, argv, **env_overrides)

    def beat(self, name: str = "beat", **env_overrides: str) -> subprocess.Popen:
        schedule = self.log_dir / f"{name}-schedule"
        argv = [
            sys.executable,
            *"-m celery -A config beat".split(),
            "--loglevel",
            "INFO",
            "--schedule",
            str(schedule),
            "--pidfile",
            "",
        ]
        return self.start(name, argv, **env_overrides)

    def kill(self, proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        """Kill every process group outright: the test is over, so nothing a graceful stop does
        matters any more, and SIGTERM sent to a prefork worker's whole group can deadlock its
        exit (a pool child killed while holding billiard's queue lock)."""
        for _, proc, _ in reversed(self.started):
            self.kill(proc)

    def log_tails(self, lines: int = 40) -> str:
        out = []
        for name, _, log in self.started:
            text = log.read_text(errors="replace").splitlines()[-lines:] if log.exists() else []
            out.append(f"----- {name} ({log}) -----\n" + "\n".join(text))
        return "\n".join(out)


def wait_for(condition: Callable[[], object], *, timeout: float, interval: float = 0.2, message: str = "") -> object:
    """Poll ``condition`` until it returns something truthy; fail with ``message`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for: {message or condition}")
        time.sleep(interval)


# --- small helpers for integration tests ---------------------------------------------------


def log_text(group: ProcessGroup, name: str) -> str:
    """Everything the process(es) started as ``name`` in ``group`` have written so far."""
    log = group.log_dir / f"{name}.log"
    return log.read_text(errors="replace") if log.exists() else ""


def wait_for_log(group: ProcessGroup, name: str, text: str, *, timeout: float) -> str:
    """Wait until ``text`` appears in the log of ``name``; fail with the log's tail if it does not."""
    try:
        wait_for(lambda: text in log_text(group, name), timeout=timeout, message=f"{text!r} in {name}.log")
    except AssertionError as exc:
        tail = "\n".join(log_text(group, name).splitlines()[-30:])
        raise AssertionError(f"{exc}\n----- {name}.log (tail) -----\n{tail}") from None
    return log_text(group, name)


def run_to_end(group: ProcessGroup, name: str, *args: str, timeout: float = 60, **env_overrides: str):
    """Run ``manage.py *args`` to completion; returns (exit code, what this run wrote)."""
    already = len(log_text(group, name))
    proc = group.manage(name, *args, **env_overrides)
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        group.kill(proc)
        raise AssertionError(f"manage.py {' '.join(args)} did not finish in {timeout}s") from None
    return code, log_text(group, name)[already:]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
