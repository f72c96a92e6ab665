from django.core.management.base import CommandError

from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Development fixture: always fails (with --message, raises RuntimeError with that text)."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--message", default="", help="Raise RuntimeError(message) instead of a CommandError.")

    def run_job(self, *, now, dry_run, message="", **options) -> dict:
        self.stdout.write("test-fail-job is about to fail")
        if message:
            raise RuntimeError(message)
        raise CommandError("test-fail-job failed on purpose")
