from __future__ import annotations

from billing.management.base import BillingJobCommand
from billing.services.notices import overdue_notices_send


class Command(BillingJobCommand):
    help = "Escalating notices for unpaid charges 1/5/15/30 days past due, each tier once per charge."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Rows per transaction (default BILLING_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, batch_size=None, **options) -> dict:
        return overdue_notices_send(now=now, dry_run=dry_run, batch_size=batch_size)
