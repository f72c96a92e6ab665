from __future__ import annotations

from billing.management.base import BillingJobCommand
from billing.services.analytics import analytics_snapshot_create


class Command(BillingJobCommand):
    help = "Yesterday's snapshot: rent billed and collected, occupancy (MRR: subscription-analytics)."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Recompute a snapshot that already exists.")

    def run_job(self, *, now, dry_run, force=False, **options) -> dict:
        return analytics_snapshot_create(now=now, dry_run=dry_run, force=force)
