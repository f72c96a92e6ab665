"""The base class of every job command.

A job command implements ``run_job(now=..., dry_run=..., **options)`` and returns a summary
dict. The base class gives it ``--dry-run``, ``--as-of`` (run as if it were then), a progress
bar when a person watches a terminal, and prints the summary as JSON on the last line of
stdout. A cancelled run stops at its next progress step or ``self.cancel_check()``.
Through ``call_command`` (and the runner's ``command_call``) the caller receives the
summary as the dict itself.

A command that finishes without doing its work (nothing configured to do it with, a server
it could not reach) says so with ``self.warn("...")``: the warnings travel in the summary under
``"warnings"``, and the runner records the run as succeeded with warnings (``JobRun.warnings``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from jobs.running.progress import ProgressReported, cancel_check, current_run_id

# A run keeps this many warnings of this many characters each: enough to say what was not done.
MAX_WARNINGS = 10
WARNING_LENGTH = 500


def parse_as_of(value: str | datetime) -> datetime:
    """``2025-02-01`` (midnight UTC) or an ISO datetime; naive times are UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            # Django's parsers return None for a malformed text and raise ValueError for a
            # well-formed impossible one (month 13): both are the same mistake here.
            moment = parse_datetime(value)
            day = parse_date(value) if moment is None else None
        except ValueError:
            moment = day = None
        if moment is None:
            if day is None:
                raise CommandError(f"--as-of {value!r}: expected a date (2025-02-01) or an ISO datetime.")
            moment = datetime(day.year, day.month, day.day)
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return moment


def as_of_argument(value: str) -> datetime:
    """``--as-of``'s type: the parser itself refuses a value that is not a date or time."""
    try:
        return parse_as_of(value)
    except CommandError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--as-of ")) from None


class JobCommand(BaseCommand):
    summary: dict
    warnings: list[str]

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Report what would be done; write nothing.")
        parser.add_argument(
            "--as-of", type=as_of_argument, help="Run as if it were this date or time (ISO 8601; default: now)."
        )
        self.add_job_arguments(parser)

    def add_job_arguments(self, parser) -> None:
        """Subclasses add their own options here."""

    def run_job(self, *, now: datetime, dry_run: bool, **options) -> dict:
        raise NotImplementedError

    def handle(self, *args, **options) -> None:
        now = parse_as_of(options.pop("as_of")) if options.get("as_of") else timezone.now()
        options.pop("as_of", None)
        dry_run = bool(options.pop("dry_run", False))
        self.warnings = []
        summary = dict(self.run_job(now=now, dry_run=dry_run, **options) or {})
        if self.warnings:
            summary["warnings"] = list(self.warnings)
        if dry_run:
            # The counts keep their names (scripts read them); the words say they are a forecast.
            summary["dry_run"] = True
            self.stdout.write("Dry run: nothing was written; the summary says what the job would do.")
        self.summary = summary
        self.stdout.write(json.dumps(summary, sort_keys=True, default=str))

    def warn(self, message: str) -> None:
        """Record that the run did not do (all of) its work; it still succeeds, with warnings.
        Written to stderr too, for a person at a terminal."""
        message = " ".join(str(message).split())[:WARNING_LENGTH]
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(message)
        self.stderr.write(f"Warning: {message}", self.style.WARNING)

    def execute(self, *args, **options) -> dict:
        self.summary = {}
        self.warnings = []
        super().execute(*args, **options)
        return self.summary

    def cancel_check(self) -> None:
        """Stop here if someone cancelled this run (raises ``RunCancelled``; the runner records
        the run cancelled and the command's open transactions roll back). ``progress`` checks at
        every step; a command that works without it calls this between pieces of work."""
        cancel_check()

    def progress(self, iterable: Iterable, *, total: int | None = None, desc: str | None = None) -> Iterable:
        """A progress bar on an interactive terminal; run by the runner, done / total on the run too
        (``jobs.running.progress``). ``total`` defaults to ``len(iterable)`` when it has one."""
        bar = tqdm(iterable, total=total, desc=desc, file=sys.stderr, disable=not sys.stderr.isatty())
        run_id = current_run_id.get()
        if run_id is None:
            return bar
        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        return ProgressReported(bar, run_id=run_id, total=total)
