"""Run one job now, in this process, through the runner (no worker needed).

Bad input (an unknown job, an ``--as-of`` that is no date, an unknown option) is one line on
stderr and exit status 2, like any command-line tool's usage error; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from jobs.command import as_of_argument, parse_as_of
from jobs.models import Job, JobRun
from jobs.runner import JobDisabled, run_execute, run_trigger

EXIT_SKIPPED = 75  # EX_TEMPFAIL: another run is active; try again later
EXIT_USAGE = 2  # bad input, as argparse exits


class Command(BaseCommand):
    help = "Run a job now in this process. Exit 0 succeeded, 1 failed, 2 bad input, 75 skipped (a run is active)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Without the usage block a parser error is the single line "manage.py runjob: error: ...".
        return super().create_parser(prog_name, subcommand, usage=argparse.SUPPRESS, **kwargs)

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="The job's name, e.g. generate-charges.")
        parser.add_argument("--as-of", type=as_of_argument, help="Passed on to the command: run as if it were then.")
        parser.add_argument("--dry-run", action="store_true", help="Passed on to the command.")

    def handle(self, *args, name: str, as_of, dry_run: bool, **options) -> None:
        job = Job.objects.filter(name=name).first()
        if job is None:
            raise CommandError(f"No job named {name!r}. `manage.py jobs` lists them.", returncode=EXIT_USAGE)
        run_options = {}
        if as_of:
            run_options["as_of"] = parse_as_of(as_of).isoformat()  # a datetime, or text from call_command
        if dry_run:
            run_options["dry_run"] = True
        try:
            result = run_trigger(job=job, triggered_by=JobRun.Trigger.CLI, options=run_options, dispatch=False)
        except JobDisabled as exc:
            raise CommandError(f"{exc} Enable it first.") from None
        if not result.queued:
            self.stdout.write(f"run #{result.run.pk} skipped: {result.run.skip_reason}")
            sys.exit(EXIT_SKIPPED)
        run = self._run_with_retries(result.run)
        self.stdout.write(f"run #{run.pk} {run.status} in {run.duration.total_seconds():.3f}s (attempt {run.attempt})")
        if run.error:
            self.stderr.write(run.error.strip().splitlines()[0])
        self.stdout.write(json.dumps(run.summary, sort_keys=True, default=str))
        if run.status != JobRun.Status.SUCCEEDED:
            sys.exit(1)

    def _run_with_retries(self, run: JobRun) -> JobRun:
        """Attempts run here too, after their backoff; a worker may take one first."""
        while True:
            finished = run_execute(run.pk, enforce_timeout=True, dispatch_retry=False)
            if finished is None:  # claimed elsewhere meanwhile
                run.refresh_from_db()
                return run
            retry = JobRun.objects.filter(retry_of=finished).first()
            if retry is None:
                return finished
            wait = max((retry.not_before - timezone.now()).total_seconds(), 0)
            self.stdout.write(f"run #{finished.pk} {finished.status}; retry #{retry.pk} in {wait:.0f}s")
            time.sleep(wait)
            run = retry
