"""Running one job's handler in this process: the command, its output, its time limit."""

from __future__ import annotations

import io
import signal
import threading
import traceback
from collections import deque
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime

from celery.exceptions import SoftTimeLimitExceeded
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError


class RunTimeout(Exception):
    """The run went past its job's timeout."""


@dataclass
class Outcome:
    status: str  # a JobRun.Status value
    summary: dict = field(default_factory=dict)
    output: str = ""
    error: str = ""


class BoundedOutput(io.TextIOBase):
    """Keeps the first and last ``limit / 2`` characters written; counts what it drops.

    The head shows how a run started, the tail how it ended (including the summary line).
    """

    def __init__(self, limit: int) -> None:
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head: list[str] = []
        self.head_size = 0
        self.tail: deque[str] = deque()
        self.tail_size = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        room = self.head_limit - self.head_size
        if room > 0:
            self.head.append(text[:room])
            self.head_size += len(text[:room])
            text = text[room:]
        if text:
            self.tail.append(text)
            self.tail_size += len(text)
            while self.tail_size > self.tail_limit:
                excess = self.tail_size - self.tail_limit
                first = self.tail[0]
                if len(first) <= excess:
                    self.tail.popleft()
                    self.tail_size -= len(first)
                    self.dropped += len(first)
                else:
                    self.tail[0] = first[excess:]
                    self.tail_size -= excess
                    self.dropped += excess
        return len(text)

    def getvalue(self) -> str:
        marker = f"\n[... {self.dropped} characters omitted ...]\n" if self.dropped else ""
        return "".join(self.head) + marker + "".join(self.tail)


@contextmanager
def alarm_after(seconds: int):
    """Raise RunTimeout in the main thread after ``seconds`` (CLI runs; workers use Celery's limit)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _expired(signum, frame):
        raise RunTimeout(f"timed out after {seconds} s")

    previous = signal.signal(signal.SIGALRM, _expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def is_job_command(name: str) -> bool:
    """Whether ``name`` is a JobCommand (it takes --as-of and --dry-run)."""
    from .command import JobCommand

    app_name = get_commands().get(name)
    return app_name is not None and isinstance(load_command_class(app_name, name), JobCommand)


def command_argv(options: dict, slot: datetime | None = None) -> list[str]:
    """Per-run options become command-line flags so the command's own parser checks them.

    A run booked to a schedule slot does the work of that slot: the slot is its ``--as-of``
    unless the run names one itself, so a late, retried or caught-up run charges its own period.
    """
    argv = []
    as_of = options.get("as_of") or slot
    if as_of:
        argv += ["--as-of", as_of.isoformat() if isinstance(as_of, datetime) else str(as_of)]
    if options.get("dry_run"):
        argv.append("--dry-run")
    return argv


def command_execute(
    *,
    command: str,
    config: dict,
    options: dict,
    timeout: int,
    output_limit: int,
    enforce_timeout: bool,
    slot: datetime | None = None,
) -> Outcome:
    """Run a management command; every failure becomes an Outcome, never an exception."""
    from .models import JobRun

    buffer = BoundedOutput(output_limit)
    # Any management command can be a job; only job commands know what a slot's --as-of means.
    argv = command_argv(options, slot if slot is not None and is_job_command(command) else None)
    try:
        with alarm_after(timeout) if enforce_timeout else nullcontext():
            result = call_command(command, *argv, stdout=buffer, stderr=buffer, **config)
    except (RunTimeout, SoftTimeLimitExceeded):
        return Outcome(JobRun.Status.TIMED_OUT, output=buffer.getvalue(), error=f"Timed out after {timeout} s.")
    except CommandError as exc:
        return Outcome(JobRun.Status.FAILED, output=buffer.getvalue(), error=f"CommandError: {exc}")
    except Exception as exc:  # a job's bug must end its run as failed, not kill the worker
        return Outcome(
            JobRun.Status.FAILED,
            output=buffer.getvalue(),
            error=f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}",
        )
    summary = result if isinstance(result, dict) else {}
    return Outcome(JobRun.Status.SUCCEEDED, summary=summary, output=buffer.getvalue())
