"""Running one job's handler in this process: the command, its output, its time limit.

What a run records is bounded and redacted here, where its Outcome is built: output and error
keep their first and last ``JOBS_OUTPUT_LIMIT / 2`` characters around a visible "truncated"
marker, after ``jobs.redaction.redact`` (so no cut leaves part of a secret), and a summary
whose JSON is larger than ``JOBS_OUTPUT_LIMIT`` bytes is replaced by a small one saying so.
"""

from __future__ import annotations

import functools
import io
import json
import signal
import threading
import traceback
from collections import deque
from collections.abc import Iterable
from contextlib import contextmanager, nullcontext, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from datetime import datetime

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError

from .progress import run_context
from .redaction import MIN_LITERAL, redact, stored_secrets

# Each kept part of a cut text is redacted with this many characters beyond its cut, which are
# then dropped: a secret (shorter than this) that the cut splits is masked whole or not kept.
REDACTION_MARGIN = 4096
SUMMARY_KEYS_SHOWN = 20


class RunTimeout(Exception):
    """The run went past its job's timeout."""


@dataclass
class Outcome:
    status: str  # a JobRun.Status value
    summary: dict = field(default_factory=dict)
    output: str = ""
    error: str = ""


class BoundedOutput(io.TextIOBase):
    """Keeps the first and last ``limit / 2`` characters written (redacted); counts the rest.

    The head shows how a run started, the tail how it ended (including the summary line). Both
    are stored with ``REDACTION_MARGIN`` more characters, redacted, and then cut to size.
    """

    def __init__(self, limit: int, *, hidden: Iterable[str] = ()) -> None:
        self.limit = limit
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.hidden = list(hidden)
        self.head: list[str] = []
        self.head_size = 0
        self.tail: deque[str] = deque()
        self.tail_size = 0
        self.dropped = 0
        self.written = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.written += len(text)
        written = len(text)
        self._keep(text)
        return written

    def _keep(self, text: str) -> None:
        room = self.head_limit + REDACTION_MARGIN - self.head_size
        if room > 0:
            self.head.append(text[:room])
            self.head_size += len(text[:room])
            text = text[room:]
        if text:
            self.tail.append(text)
            self.tail_size += len(text)
            while self.tail_size > self.tail_limit + REDACTION_MARGIN:
                excess = self.tail_size - self.tail_limit - REDACTION_MARGIN
                first = self.tail[0]
                if len(first) <= excess:
                    self.tail.popleft()
                    self.tail_size -= len(first)
                    self.dropped += len(first)
                else:
                    self.tail[0] = first[excess:]
                    self.tail_size -= excess
                    self.dropped += excess

    def getvalue(self) -> str:
        head, tail = "".join(self.head), "".join(self.tail)
        if not self.dropped:
            # Everything is here: redact it whole, then cut the redacted text.
            text = redact(head + tail, extra=self.hidden)
            if len(text) <= self.limit:
                return text
            head, tail = text[: self.head_limit], text[len(text) - self.tail_limit :]
        else:
            head = redact(head, extra=self.hidden)
            head = head[: max(0, min(self.head_limit, len(head) - REDACTION_MARGIN))]
            tail = redact(tail, extra=self.hidden)
            tail = tail[len(tail) - max(0, min(self.tail_limit, len(tail) - REDACTION_MARGIN)) :]
        marker = (
            f"[... truncated: {self.written} characters in all, "
            f"the first {len(head)} and the last {len(tail)} shown (JOBS_OUTPUT_LIMIT) ...]"
        )
        return f"{head}\n{marker}\n{tail}"


def text_bounded(text: str, *, hidden: Iterable[str] = ()) -> str:
    """``text`` redacted and cut to ``JOBS_OUTPUT_LIMIT`` as run output is."""
    buffer = BoundedOutput(settings.JOBS_OUTPUT_LIMIT, hidden=hidden)
    buffer.write(text)
    return buffer.getvalue()


def summary_bounded(summary: dict) -> dict:
    """The summary, or, when its JSON is over ``JOBS_OUTPUT_LIMIT`` bytes, a small one that says
    so and names its first keys (a summary is counts and ids, not a data dump)."""
    size = len(json.dumps(summary, sort_keys=True, default=str).encode())
    if size <= settings.JOBS_OUTPUT_LIMIT:
        return summary
    keys = [str(key)[:100] for key in list(summary)[:SUMMARY_KEYS_SHOWN]]
    return {"truncated": True, "size_bytes": size, "keys": keys}


def outcome_bounded(
    status: str,
    *,
    summary: dict | None = None,
    output: str | BoundedOutput = "",
    error: str = "",
    hidden: Iterable[str] = (),
) -> Outcome:
    """The Outcome a run records: summary, output and error redacted (``hidden`` too) and bounded.
    ``output`` is text, or the BoundedOutput that captured it (bounded as it was written)."""
    return Outcome(
        status,
        summary=summary_bounded(summary or {}),
        output=output.getvalue() if isinstance(output, BoundedOutput) else text_bounded(output, hidden=hidden),
        error=text_bounded(error, hidden=hidden),
    )


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


# Options every management command has; not worth listing as a job's options.
COMMON_OPTIONS = {"settings", "pythonpath", "traceback", "no_color", "force_color", "skip_checks"}


def _arg_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def config_argv(config: dict) -> list[str]:
    """A job's config as the command line its command's parser reads: a key is an option's name
    (``dry_run``, ``dry-run`` and ``--dry-run`` all mean ``--dry-run``); ``{"seconds": 5}`` is
    ``--seconds=5``; ``true`` is the bare switch, ``false`` and ``null`` leave it out; a list
    gives the option its values in order."""
    argv = []
    for key, value in config.items():
        flag = "--" + str(key).lstrip("-").replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            argv += [flag, *map(_arg_text, value)]
        elif value is not False and value is not None:
            argv.append(f"{flag}={_arg_text(value)}")
    return argv


def command_argv(config: dict, options: dict, slot: datetime | None = None) -> list[str]:
    """The command line of one run: the job's config, then the run's own options, read by the
    command's own parser (the last of a repeated option wins).

    A run booked to a schedule slot does the work of that slot: the slot is its ``--as-of``
    unless the run or the job's config names one, so a late, retried or caught-up run charges
    its own period.
    """
    argv = config_argv(config) + [str(arg) for arg in options.get("args", ())]  # runjob NAME --option ...
    as_of = options.get("as_of") or (None if config.get("as_of") else slot)
    if as_of:
        argv += ["--as-of", as_of.isoformat() if isinstance(as_of, datetime) else str(as_of)]
    if options.get("dry_run"):
        argv.append("--dry-run")
    return argv


def config_error(command: str, config) -> str | None:
    """Why ``config`` would fail every run of ``command`` (None if it would not), as the
    command's own parser judges the command line the runner builds from it."""
    if not isinstance(config, dict):
        return "Config must be a JSON object of the command's options, e.g. {}."
    app_name = get_commands().get(command)
    if app_name is None:
        return None  # the command itself is refused elsewhere
    parser = _command_parser(app_name, command)
    try:
        _, extras = parser.parse_known_args(config_argv(config))
        unknown = [key for key in config if _flag_in(key, extras)]
        if unknown:
            return f"Unknown option {unknown[0]!r} for {command}. {_options_hint(parser)}"
        parser.parse_args(command_argv(config, {}))
    except CommandError as exc:  # how Django's parser reports bad input outside a terminal
        return f"{command}: {exc}"
    return None


@functools.lru_cache(maxsize=64)
def _command_parser(app_name: str, command: str):
    """A command's argument parser, built once per process: building one costs more than
    parsing with it, and importing many jobs checks thousands of configs."""
    return load_command_class(app_name, command).create_parser("manage.py", command)


def _flag_in(key: str, extras: list[str]) -> bool:
    flag = "--" + key.lstrip("-").replace("_", "-")
    return any(extra == flag or extra.startswith(f"{flag}=") for extra in extras)


def _options_hint(parser) -> str:
    try:
        names = sorted(set(vars(parser.parse_args([]))) - COMMON_OPTIONS)
    except CommandError:  # it has required arguments: no list without them
        return "See manage.py help for its options."
    return f"Valid options: {', '.join(names)}." if names else "It takes no options."


def command_execute(
    *,
    command: str,
    config: dict,
    options: dict,
    timeout: int,
    output_limit: int,
    enforce_timeout: bool,
    slot: datetime | None = None,
    run_id: int | None = None,
) -> Outcome:
    """Run a management command; every failure becomes an Outcome, never an exception.
    ``run_id`` names the run it does, for ``JobCommand.progress`` (``jobs.progress``).

    What it writes to ``self.stdout``/``self.stderr`` and with ``print()`` (sys.stdout and
    sys.stderr, redirected for the call in this process) lands in one bounded buffer.
    """
    from .models import JobRun

    Status = JobRun.Status
    # Secrets the database holds (webhook credentials and headers), read once for this run.
    hidden = [value for value in stored_secrets() if len(value) >= MIN_LITERAL]
    buffer = BoundedOutput(output_limit, hidden=hidden)
    # Any management command can be a job; only job commands know what a slot's --as-of means.
    argv = command_argv(config, options, slot if slot is not None and is_job_command(command) else None)
    try:
        with (
            alarm_after(timeout) if enforce_timeout else nullcontext(),
            redirect_stdout(buffer),
            redirect_stderr(buffer),
            run_context(run_id),
        ):
            result = call_command(command, *argv, stdout=buffer, stderr=buffer)
    except (RunTimeout, SoftTimeLimitExceeded):
        return outcome_bounded(Status.TIMED_OUT, output=buffer, error=f"Timed out after {timeout} s.", hidden=hidden)
    except CommandError as exc:
        return outcome_bounded(Status.FAILED, output=buffer, error=f"CommandError: {exc}", hidden=hidden)
    except Exception as exc:  # a job's bug must end its run as failed, not kill the worker
        error = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"
        return outcome_bounded(Status.FAILED, output=buffer, error=error, hidden=hidden)
    summary = result if isinstance(result, dict) else {}
    return outcome_bounded(Status.SUCCEEDED, summary=summary, output=buffer, hidden=hidden)
