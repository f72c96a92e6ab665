from __future__ import annotations

from billing.management.base import BillingJobCommand
from billing.services.notices import trial_reminders_send


class Command(BillingJobCommand):
    help = "Trial-ending reminders 7 days and 1 day before, each once per subscription."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Rows per transaction (default BILLING_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, batch_size=None, **options) -> dict:
        return trial_reminders_send(now=now, dry_run=dry_run, batch_size=batch_size)
