from django.conf import settings

from jobs.operations.logs import audit_logs_cleanup
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Delete audit entries and system log rows older than the retention period, in batches."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"Keep this many days (default {settings.JOBS_AUDIT_RETENTION_DAYS}).",
        )
        parser.add_argument("--batch-size", type=int, default=None, help="Rows deleted per transaction.")

    def run_job(self, *, now, dry_run, days=None, batch_size=None, **options) -> dict:
        return audit_logs_cleanup(now=now, days=days, batch_size=batch_size, dry_run=dry_run)
