"""Running one job's handler in this process: the command, its output, its time limit.

What a run records is bounded and redacted here, where its Outcome is built: output and error
keep their first and last ``JOBS_OUTPUT_LIMIT / 2`` characters around a visible "truncated"
marker, after ``core.redaction.redact`` (so no cut leaves part of a secret), and a summary
whose JSON is larger than ``JOBS_OUTPUT_LIMIT`` bytes is replaced by a small one saying so.
"""

from __future__ import annotations

import functools
import io
import json
import re
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
from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.redaction import MIN_LITERAL, redact, stored_secrets
from jobs.running.process_tree import processes_owned
from jobs.running.progress import RunCancelled, run_context

# Each kept part of a cut text is redacted with this many characters beyond its cut, which are
# then dropped: a secret (shorter than this) that the cut splits is masked whole or not kept.
REDACTION_MARGIN = 4096
SUMMARY_KEYS_SHOWN = 20
STOPPED_ERROR = (
    "Stopped before it ended: its worker shut down and the run outlasted JOBS_STOP_GRACE_SECONDS, "
    "or the process running it was told to stop (SIGTERM)."
)


CANCELLED_ERROR = "Cancelled: the command stopped at its next progress step or check; its transaction was rolled back."
# Set in a Celery pool process (worker_process_init): a cancelled run that outlives its grace
# there is ended by killing the process (its pool replaces it); elsewhere (``runjob``) the
# command is interrupted by CANCEL_SIGNAL.
_pool_process: list[bool] = [False]
# Not SIGUSR1: Celery's pool delivers its soft time limit with it.
CANCEL_SIGNAL = signal.SIGUSR2
_cancel_signal_ready: list[bool] = [False]


def pool_process_mark(**kwargs) -> None:
    """Receiver of Celery's ``worker_process_init``: this process is a worker's pool process."""
    _pool_process[0] = True


def is_pool_process() -> bool:
    return _pool_process[0]


def cancel_signal_ready() -> bool:
    """Whether CANCEL_SIGNAL now interrupts a command (``cancel_on_signal`` is in force)."""
    return _cancel_signal_ready[0]


class RunTimeout(Exception):
    """The run went past its job's timeout."""


class RunStopped(BaseException):
    """The process running the run was told to stop (SIGTERM: a worker shutdown's grace ran
    out, or ``runjob`` was stopped). A BaseException, like KeyboardInterrupt: a command's own
    ``except Exception`` does not swallow it."""


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


def summary_redacted(value, *, hidden: Iterable[str] = ()):
    """``value`` (a summary or a part of it) with every text in it, keys included, redacted."""
    if isinstance(value, str):
        return redact(value, extra=hidden)
    if isinstance(value, dict):
        return {summary_redacted(str(k), hidden=hidden): summary_redacted(v, hidden=hidden) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [summary_redacted(item, hidden=hidden) for item in value]
    return value


def summary_bounded(summary: dict, *, hidden: Iterable[str] = ()) -> dict:
    """The summary redacted, or, when its JSON is over ``JOBS_OUTPUT_LIMIT`` bytes, a small one
    that says so and names its first keys (a summary is counts and ids, not a data dump)."""
    summary = summary_redacted(summary, hidden=hidden)
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
        summary=summary_bounded(summary or {}, hidden=hidden),
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


@contextmanager
def stop_on_sigterm():
    """SIGTERM ends the run (RunStopped) rather than the process, so the run's processes are
    ended and its outcome recorded (main thread only; elsewhere signals are not ours)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _stopped(signum, frame):
        raise RunStopped()

    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def cancel_on_signal():
    """CANCEL_SIGNAL raises RunCancelled in the command (main thread only): how a cancelled run
    that ignored its request is interrupted outside a worker's pool. A pool process is killed
    instead, and its signals stay Celery's."""
    if threading.current_thread() is not threading.main_thread() or is_pool_process():
        yield
        return

    def _cancelled(signum, frame):
        raise RunCancelled("interrupted after the cancel's grace")

    previous = signal.signal(CANCEL_SIGNAL, _cancelled)
    _cancel_signal_ready[0] = True
    try:
        yield
    finally:
        _cancel_signal_ready[0] = False
        signal.signal(CANCEL_SIGNAL, previous)


def is_job_command(name: str) -> bool:
    """Whether ``name`` is a JobCommand (it takes --as-of and --dry-run)."""
    from jobs.running.command import JobCommand

    app_name = get_commands().get(name)
    return app_name is not None and isinstance(_command_loaded(app_name, name)[0], JobCommand)


@functools.lru_cache(maxsize=256)
def _command_loaded(app_name: str, command: str) -> tuple[BaseCommand, CommandParser]:
    """The command and its parser as ``call_command`` builds them, once per process: building
    the parser costs more than running a small command, and ``call_command`` builds it anew on
    every call."""
    instance = load_command_class(app_name, command)
    return instance, instance.create_parser("", command)


def command_call(command: str, argv: list[str], *, stdout, stderr):
    """What ``call_command(command, *argv, stdout=stdout, stderr=stderr)`` does (the options
    read by the command's own parser, system checks skipped), on a fresh instance of the command
    with the parser this process built once."""
    app_name = get_commands()[command]
    instance, parser = _command_loaded(app_name, command)
    options = vars(parser.parse_args(argv))
    args = options.pop("args", ())
    options.update(stdout=stdout, stderr=stderr, skip_checks=True)
    # A fresh instance per run: nothing one run leaves on the command reaches the next.
    return type(instance)().execute(*args, **options)


# Options every management command has; not worth listing as a job's options.
COMMON_OPTIONS = {"settings", "pythonpath", "traceback", "no_color", "force_color", "skip_checks"}
# Options of Django's own that end the process (help, version) or mean nothing inside a worker
# (settings, pythonpath: read by manage.py before any command starts).
REFUSED_FLAGS = {"--help", "--version", "--settings", "--pythonpath"}
# A config key is an option's long name, with or without its leading "--": never empty, never
# "--" alone, never a short option or anything else the parser would read as something else.
OPTION_KEY = re.compile(r"(?:--)?[A-Za-z0-9][A-Za-z0-9_-]*")


class ConfigRefused(ValueError):
    """A job's config that no run may use; the message names the option and says why."""


def _arg_text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def option_flag(key: str) -> str:
    """The option a config key names: ``dry_run``, ``dry-run`` and ``--dry-run`` are ``--dry-run``."""
    return "--" + str(key).removeprefix("--").replace("_", "-")


def config_argv(config: dict) -> list[str]:
    """A job's config as the command line its command's parser reads: a key is an option's name
    (``dry_run``, ``dry-run`` and ``--dry-run`` all mean ``--dry-run``); ``{"seconds": 5}`` is
    ``--seconds=5`` (one word: a value is never read as an option or an argument); ``true`` is the
    bare switch, ``false`` and ``null`` leave it out; a list gives a list option its values in
    order. Only a config ``config_check`` accepts is ever run."""
    argv = []
    for key, value in config.items():
        flag = option_flag(key)
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
    # The run's own command options ("Run with options", the API's options) over the job's config.
    argv = config_argv(run_config(config, options)) + [str(arg) for arg in options.get("args", ())]
    as_of = options.get("as_of") or (None if config.get("as_of") else slot)
    if as_of:
        argv += ["--as-of", as_of.isoformat() if isinstance(as_of, datetime) else str(as_of)]
    if options.get("dry_run"):
        argv.append("--dry-run")
    return argv


def run_config(config: dict, options: dict) -> dict:
    """The job's config with the run's own ``command_options`` over it (a key given by both: the
    run's value)."""
    overrides = options.get("command_options") or {}
    return {**config, **overrides} if isinstance(overrides, dict) and isinstance(config, dict) else config


def run_options_check(command: str, config: dict, options: dict) -> None:
    """Raise ConfigRefused unless ``command``'s own parser takes the command line of a run with
    these options: each of ``command_options`` an option it declares (as ``config_check`` checks a
    config), and ``as_of``, ``dry_run`` and runjob's ``args`` read by the parser after them, in its
    words (an ``--as-of`` it cannot read, a ``--dry-run`` or ``--as-of`` it does not declare)."""
    app_name = get_commands().get(command)
    if app_name is None:
        raise ConfigRefused(f"{command!r} is not a command this installation has.")
    parser = _command_parser(app_name, command)
    overrides = options.get("command_options") or {}
    if not isinstance(overrides, dict):
        raise ConfigRefused('The command\'s options must be a JSON object, e.g. {"batch_size": 10}.')
    for key, value in overrides.items():
        _option_check(parser, command, key, value)
    if "--" in [str(arg) for arg in options.get("args", ())]:
        raise ConfigRefused("A bare '--' is not an option.")
    _parsed(parser, command, command_argv(config, options))


def command_options_hint(command: str) -> str:
    """The options ``command`` declares, in words (for a form)."""
    app_name = get_commands().get(command)
    return _options_hint(_command_parser(app_name, command)) if app_name else ""


def config_error(command: str, config) -> str | None:
    """Why ``config`` may not be ``command``'s config (None if it may): see ``config_check``."""
    try:
        config_check(command, config)
    except ConfigRefused as exc:
        return str(exc)
    return None


def config_check(command: str, config) -> None:
    """Raise ConfigRefused unless ``config`` sets only options ``command`` declares, each with a
    value its parser takes; checked on every save and again by the worker before a run.

    1. The config is a JSON object; each key names an option (``OPTION_KEY``), not one of
       Django's process options (``REFUSED_FLAGS``), that the command's parser declares exactly
       (no abbreviation: the parser is built with ``allow_abbrev=False``).
    2. A value is text, a number, true, false or null; a list only for an option that takes a
       list, and none of its items may start with "-" (it would be read as an option, or "--").
    3. The command's parser reads the whole command line a run would get (without a slot):
       what it refuses is refused here, in its words.
    """
    if not isinstance(config, dict):
        raise ConfigRefused("Config must be a JSON object of the command's options, e.g. {}.")
    app_name = get_commands().get(command)
    if app_name is None:
        return  # the command itself is refused (jobs.catalog.allowlist)
    parser = _command_parser(app_name, command)
    for key, value in config.items():
        _option_check(parser, command, key, value)
    _parsed(parser, command, command_argv(config, {}))


def _option_check(parser, command: str, key, value) -> None:
    if not isinstance(key, str) or not OPTION_KEY.fullmatch(key):
        raise ConfigRefused(f'Config key {key!r} is not an option name: use its long name, e.g. "dry_run".')
    flag = option_flag(key)
    if flag in REFUSED_FLAGS or not _declared(parser, flag):
        raise ConfigRefused(f"Unknown option {key!r} for {command}. {_options_hint(parser)}")
    if isinstance(value, list):
        _list_check(parser, command, key, flag, value)
    elif value is not None and not isinstance(value, str | int | float):
        raise ConfigRefused(f"Option {key!r}: a value is text, a number, true, false or a list, not {value!r}.")


def _declared(parser, flag: str) -> bool:
    """Whether the parser reads ``flag`` as one of its options: as a switch (bare) or with a value
    (``--flag=x``). An option it does not know stays among the leftovers; one it knows but whose
    probe value it refuses raises."""
    for probe in ([flag], [f"{flag}=x"]):
        try:
            _, extras = parser.parse_known_args(probe)
        except (Exception, SystemExit):  # read as its option, whose value it refused
            return True
        if not extras:
            return True
    return False


def _list_check(parser, command: str, key: str, flag: str, items: list) -> None:
    """A list goes only to an option that takes every item as its own value (nargs "*", "+" or N):
    read alone, the items must change that one option, to a list of as many values, and nothing
    else (no argument, no leftover)."""
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise ConfigRefused(f"Option {key!r}: a list holds text or numbers, not {item!r}.")
        if _arg_text(item).startswith("-"):
            raise ConfigRefused(f"Option {key!r}: a list item may not start with '-' ({item!r}).")
    before = vars(_parsed(parser, command, [], known=True)[0])
    after, extras = _parsed(parser, command, [flag, *map(_arg_text, items)], known=True)
    changed = [value for dest, value in vars(after).items() if before.get(dest) != value]
    if extras or len(changed) != 1 or not isinstance(changed[0], list) or len(changed[0]) != len(items):
        raise ConfigRefused(f"Option {key!r} of {command} takes one value, not a list of {len(items)}.")


def _parsed(parser, command: str, argv: list[str], *, known: bool = False):
    """The parser's reading of ``argv`` (``parse_known_args`` with ``known``); what it refuses
    becomes ConfigRefused. Outside a terminal Django's parser raises CommandError; SystemExit is
    an option that ends the process (refused before it gets here, caught all the same)."""
    try:
        return parser.parse_known_args(argv) if known else parser.parse_args(argv)
    except CommandError as exc:
        raise ConfigRefused(f"{command}: {exc}") from None
    except SystemExit:
        raise ConfigRefused(f"{command}: its parser refused {' '.join(argv)!r}.") from None
    except Exception as exc:  # an option's own type function may raise anything for bad input
        raise ConfigRefused(f"{command}: {type(exc).__name__}: {exc}") from None


@functools.lru_cache(maxsize=64)
def _command_parser(app_name: str, command: str):
    """A command's argument parser, without abbreviations (``--dry`` is not ``--dry-run``), built
    once per process: building one costs more than parsing with it, and importing many jobs
    checks thousands of configs."""
    return load_command_class(app_name, command).create_parser("manage.py", command, allow_abbrev=False)


def _options_hint(parser) -> str:
    try:
        names = sorted(set(vars(parser.parse_args([]))) - COMMON_OPTIONS)
    except CommandError:  # it has required arguments: no list without them
        return "See manage.py help for its options."
    return f"Valid options: {', '.join(names)}." if names else "It takes no options."


def run_refusal(*, command: str, config: dict, options: dict) -> str | None:
    """Why the worker must not run this (None: it may): the command is not on the allow-list, or
    the config is one no save would have accepted (a restore or raw SQL can hold either), or the
    run's own options hold a bare "--" that would turn what follows into arguments."""
    from jobs.catalog.allowlist import command_refusal

    if refusal := command_refusal(command):
        return refusal
    if error := config_error(command, config):
        return f"Config refused: {error}"
    if "--" in [str(arg) for arg in options.get("args", ())]:
        return "Options refused: a bare '--' is not an option."
    if options.get("command_options"):
        try:
            run_options_check(command, config, options)
        except ConfigRefused as exc:
            return f"Options refused: {exc}"
    return None


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
    ``run_id`` names the run it does, for ``JobCommand.progress`` (``jobs.running.progress``).

    What it writes to ``self.stdout``/``self.stderr`` and with ``print()`` (sys.stdout and
    sys.stderr, redirected for the call in this process) lands in one bounded buffer.
    """
    from jobs.models import JobRun

    Status = JobRun.Status
    # Secrets the database holds (webhook credentials and headers), read once for this run.
    hidden = [value for value in stored_secrets() if len(value) >= MIN_LITERAL]
    buffer = BoundedOutput(output_limit, hidden=hidden)
    if refusal := run_refusal(command=command, config=config, options=options):
        # Checked again here, where it runs: nothing is run, and the run fails with the reason.
        return outcome_bounded(Status.FAILED, error=f"Not run: {refusal}", hidden=hidden)
    # Only job commands know what a slot's --as-of means.
    argv = command_argv(config, options, slot if slot is not None and is_job_command(command) else None)
    try:
        with (
            # Outermost: its end (the run's processes ended) runs after the alarm is off.
            processes_owned(),
            stop_on_sigterm(),
            cancel_on_signal(),
            alarm_after(timeout) if enforce_timeout else nullcontext(),
            redirect_stdout(buffer),
            redirect_stderr(buffer),
            run_context(run_id),
        ):
            result = command_call(command, argv, stdout=buffer, stderr=buffer)
    except RunCancelled:
        return outcome_bounded(Status.CANCELLED, output=buffer, error=CANCELLED_ERROR, hidden=hidden)
    except RunStopped:
        return outcome_bounded(Status.ABANDONED, output=buffer, error=STOPPED_ERROR, hidden=hidden)
    except (RunTimeout, SoftTimeLimitExceeded):
        return outcome_bounded(Status.TIMED_OUT, output=buffer, error=f"Timed out after {timeout} s.", hidden=hidden)
    except CommandError as exc:
        return outcome_bounded(Status.FAILED, output=buffer, error=f"CommandError: {exc}", hidden=hidden)
    except Exception as exc:  # a job's bug must end its run as failed, not kill the worker
        error = f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()}"
        return outcome_bounded(Status.FAILED, output=buffer, error=error, hidden=hidden)
    summary = result if isinstance(result, dict) else {}
    return outcome_bounded(Status.SUCCEEDED, summary=summary, output=buffer, hidden=hidden)
