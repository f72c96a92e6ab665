from __future__ import annotations

from billing.management.base import BillingJobCommand
from billing.services.charges import charges_generate


class Command(BillingJobCommand):
    help = "Monthly rent CHARGE ledger entries for every billable lease, prorated by day; once per lease and month."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Leases per transaction (default BILLING_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, batch_size=None, **options) -> dict:
        bar = self.progress(iter(()), desc="leases")  # advanced batch by batch; silent off a terminal
        try:
            return charges_generate(now=now, dry_run=dry_run, batch_size=batch_size, progress=bar.update)
        finally:
            bar.close()
