from django.core.management.base import CommandError

from jobs.command import JobCommand


class Command(JobCommand):
    help = "Development fixture: always fails."

    def run_job(self, *, now, dry_run, **options) -> dict:
        self.stdout.write("test-fail-job is about to fail")
        raise CommandError("test-fail-job failed on purpose")
