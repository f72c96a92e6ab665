from __future__ import annotations

from billing.management.base import BillingJobCommand
from billing.services.expenses import expenses_copy


class Command(BillingJobCommand):
    help = "Copy active recurring expenses into the month once; invoice tenant-billable ones."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Rows per transaction (default BILLING_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, batch_size=None, **options) -> dict:
        return expenses_copy(now=now, dry_run=dry_run, batch_size=batch_size)
