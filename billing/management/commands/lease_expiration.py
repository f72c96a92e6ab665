from __future__ import annotations

from billing.management.base import BillingJobCommand
from billing.services.notices import lease_expiry_alerts_send


class Command(BillingJobCommand):
    help = "Lease-expiry alerts at 90/60/30/14/7 days to tenant and owner, each tier once per lease."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Rows per transaction (default BILLING_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, batch_size=None, **options) -> dict:
        return lease_expiry_alerts_send(now=now, dry_run=dry_run, batch_size=batch_size)
