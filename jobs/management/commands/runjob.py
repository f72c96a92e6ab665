"""Run one job now, in this process, through the runner (no worker needed).

Options after the job's name that runjob does not know (``runjob generate-charges --batch-size
10``) are the job command's own: its parser checks them now, and the run passes them on.

Bad input (an unknown job, an ``--as-of`` that is no date, an option the job's command refuses) is
one line on stderr and exit status 2, like any command-line tool's usage error; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from django.core.management import get_commands, load_command_class
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from jobs.models import Job, JobRun
from jobs.running.command import as_of_argument, parse_as_of
from jobs.running.execution import command_argv
from jobs.running.runner import run_execute, run_trigger

EXIT_SKIPPED = 75  # EX_TEMPFAIL: another run is active; try again later
EXIT_USAGE = 2  # bad input, as argparse exits


def add_run_options(parser) -> None:
    """runjob's own options, which it reads before or after the job's name."""
    parser.add_argument("--as-of", type=as_of_argument, help="Passed on to the command: run as if it were then.")
    parser.add_argument("--dry-run", action="store_true", help="Passed on to the command.")


# Picks runjob's own options out of what follows the job's name; the rest is the command's.
RUN_OPTIONS = argparse.ArgumentParser(add_help=False, allow_abbrev=False, exit_on_error=False)
add_run_options(RUN_OPTIONS)


class JobOptions(argparse.Action):
    """What follows the job's name: runjob's own options, and the rest, which the job's command
    parses with its config as a run would. Checked while parsing, like any other bad input, so an
    error is the parser's one line before anything runs."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        try:
            own, command_args = RUN_OPTIONS.parse_known_args(list(values))
        except argparse.ArgumentError as exc:
            parser.error(str(exc))
        namespace.as_of = namespace.as_of or own.as_of
        namespace.dry_run = namespace.dry_run or own.dry_run
        setattr(namespace, self.dest, command_args)
        job = Job.objects.filter(name=namespace.name).first() if command_args else None
        if job is not None:  # an unknown job is reported by handle()
            problem = command_args_error(job, command_args)
            if problem:
                parser.error(f"{job.name}: {problem}")


def command_args_error(job: Job, command_args: list[str]) -> str | None:
    """Why the job's command refuses these options after its config (None if it takes them)."""
    app_name = None if job.webhook_handler_id else get_commands().get(job.command)
    if app_name is None:
        return "it runs no management command, so it takes no options of its own."
    parser = load_command_class(app_name, job.command).create_parser("manage.py", job.command)
    try:
        parser.parse_args(command_argv(job.config or {}, {"args": command_args}))
    except CommandError as exc:  # how Django's parser reports bad input when not on a terminal
        return str(exc).removeprefix("Error: ")
    return None


class Command(BaseCommand):
    help = "Run a job now in this process. Exit 0 succeeded, 1 failed, 2 bad input, 75 skipped (a run is active)."

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Without the usage block a parser error is the single line "manage.py runjob: error: ...".
        return super().create_parser(prog_name, subcommand, usage=argparse.SUPPRESS, **kwargs)

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="The job's name, e.g. generate-charges.")
        add_run_options(parser)
        parser.add_argument(
            "job_options",
            nargs=argparse.REMAINDER,
            action=JobOptions,
            metavar="OPTION",
            help="The job command's own options, e.g. --batch-size 10 (checked by its parser).",
        )

    def handle(self, *args, name: str, as_of, dry_run: bool, job_options=(), **options) -> None:
        job = Job.objects.filter(name=name).first()
        if job is None:
            raise CommandError(f"No job named {name!r}. `manage.py jobs` lists them.", returncode=EXIT_USAGE)
        run_options = {}
        if job_options:
            run_options["args"] = list(job_options)
        if as_of:
            run_options["as_of"] = parse_as_of(as_of).isoformat()  # a datetime, or text from call_command
        if dry_run:
            run_options["dry_run"] = True
        # A paused job runs too: this is a person at the machine, running it by hand.
        result = run_trigger(job=job, triggered_by=JobRun.Trigger.CLI, options=run_options, dispatch=False)
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
