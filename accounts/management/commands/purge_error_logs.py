from __future__ import annotations

from accounts.services.housekeeping import error_logs_purge
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Delete error-log rows older than ACCOUNTS_ERROR_LOG_RETENTION_DAYS, in batches."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Rows per transaction (default ACCOUNTS_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, **options) -> dict:
        return error_logs_purge(now=now, dry_run=dry_run, batch_size=options.get("batch_size"))
