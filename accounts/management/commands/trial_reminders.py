from __future__ import annotations

from accounts.services.reminders import trial_reminders_send
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Trial-ending reminders 7 days and 1 day before, each once per subscription."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Rows per transaction (default ACCOUNTS_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, batch_size=None, **options) -> dict:
        return trial_reminders_send(now=now, dry_run=dry_run, batch_size=batch_size)
