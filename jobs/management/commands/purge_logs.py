from django.conf import settings

from jobs.operations.logs import logs_purge
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = (
        "Delete job runs older than the retention period (always keeping each job's newest runs), "
        "and other apps' finished rows (sent/dead notifications, webhook deliveries)."
    )

    def add_job_arguments(self, parser) -> None:
        parser.add_argument(
            "--days", type=int, default=None, help=f"Keep this many days (default {settings.JOBS_RUN_RETENTION_DAYS})."
        )
        parser.add_argument(
            "--keep",
            type=int,
            default=None,
            help=f"Runs always kept per job, however old (default {settings.JOBS_RUNS_KEEP_PER_JOB}).",
        )
        parser.add_argument("--batch-size", type=int, default=None, help="Rows deleted per transaction.")

    def run_job(self, *, now, dry_run, days=None, keep=None, batch_size=None, **options) -> dict:
        return logs_purge(now=now, days=days, keep=keep, batch_size=batch_size, dry_run=dry_run)
