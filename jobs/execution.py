"""Running one job's handler in this process: the command, its output, its time limit."""

from __future__ import annotations

import io
import signal
import threading
import traceback
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass, field

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


def command_argv(options: dict) -> list[str]:
    """Per-run options become command-line flags so the command's own parser checks them."""
    argv = []
    if options.get("as_of"):
        argv += ["--as-of", str(options["as_of"])]
    if options.get("dry_run"):
        argv.append("--dry-run")
    return argv


@dataclass
class _ParserInfo:
    """What a command's parser tells about it, worked out once per process and command."""

    parser: object
    dest_by_option: dict[str, str]
    valid: frozenset[str]
    has_required: bool
    no_argv_values: dict | None = None  # parse_args([]), the argv of nearly every run


# Building a command's argparse parser, and walking it, costs more than a no-op job; both are
# reusable.
_parsers: dict[str, _ParserInfo] = {}


def _parser_info(command, name: str) -> _ParserInfo:
    info = _parsers.get(name)
    if info is None:
        parser = command.create_parser("", name)
        dest_by_option = {
            min(action.option_strings).lstrip("-").replace("-", "_"): action.dest
            for action in parser._actions
            if action.option_strings
        }
        info = _parsers[name] = _ParserInfo(
            parser=parser,
            dest_by_option=dest_by_option,
            valid=frozenset(dest_by_option.values()) | set(dest_by_option) | {"stdout", "stderr", "skip_checks"},
            has_required=any(action.required for action in parser._actions if action.option_strings),
        )
    return info


def _parsed(info: _ParserInfo, argv: list[str]) -> dict:
    if argv:
        return vars(info.parser.parse_args(argv))
    if info.no_argv_values is None:
        info.no_argv_values = vars(info.parser.parse_args([]))
    # A shallow copy is what argparse itself gives: it hands out the same default objects.
    return dict(info.no_argv_values)


def run_management_command(name: str, argv: list[str], options: dict, *, stdout, stderr):
    """``call_command`` with the parser cached per command. Unknown names and options raise
    the same errors ``call_command`` does; any other case is handed to ``call_command``."""
    app_name = get_commands().get(name)
    if app_name is None:
        return call_command(name, *argv, stdout=stdout, stderr=stderr, **options)
    command = load_command_class(app_name, name)
    info = _parser_info(command, name)
    if info.has_required or (options and not info.valid.issuperset(options)):
        return call_command(name, *argv, stdout=stdout, stderr=stderr, **options)
    values = _parsed(info, argv)
    values.update({info.dest_by_option.get(key, key): value for key, value in options.items()})
    if "skip_checks" not in options:
        values["skip_checks"] = True  # as call_command: system checks belong to start-up, not to every run
    args = values.pop("args", ())
    return command.execute(*args, stdout=stdout, stderr=stderr, **values)


def command_execute(
    *, command: str, config: dict, options: dict, timeout: int, output_limit: int, enforce_timeout: bool
) -> Outcome:
    """Run a management command; every failure becomes an Outcome, never an exception."""
    from .models import JobRun

    buffer = BoundedOutput(output_limit)
    try:
        if enforce_timeout:
            with alarm_after(timeout):
                result = run_management_command(command, command_argv(options), config, stdout=buffer, stderr=buffer)
        else:
            result = run_management_command(command, command_argv(options), config, stdout=buffer, stderr=buffer)
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
