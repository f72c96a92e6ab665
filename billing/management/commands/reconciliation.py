from __future__ import annotations

from billing.management.base import BillingJobCommand
from billing.services.balances import balances_reconcile


class Command(BillingJobCommand):
    help = "Recompute every lease balance from its ledger, fix drift and record each correction."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Rows per transaction (default BILLING_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, batch_size=None, **options) -> dict:
        return balances_reconcile(now=now, dry_run=dry_run, batch_size=batch_size)
