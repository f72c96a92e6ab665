from __future__ import annotations

from accounts.services.licenses import licenses_check
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Expire licenses past their end; warning e-mails 7, 3 and 1 days before, each once."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Rows per transaction (default ACCOUNTS_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, **options) -> dict:
        return licenses_check(now=now, dry_run=dry_run, batch_size=options.get("batch_size"))
