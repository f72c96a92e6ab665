from __future__ import annotations

from billing.management.base import BillingJobCommand
from billing.services.statements import payouts_generate


class Command(BillingJobCommand):
    help = "The previous month's payout per owner, once; a non-positive result is recorded with its reason."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Rows per transaction (default BILLING_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, batch_size=None, **options) -> dict:
        return payouts_generate(now=now, dry_run=dry_run, batch_size=batch_size)
