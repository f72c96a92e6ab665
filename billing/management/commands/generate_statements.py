from __future__ import annotations

from billing.management.base import BillingJobCommand
from billing.services.statements import statements_generate


class Command(BillingJobCommand):
    help = "The previous month's owner statements, with their PDF. --force recomputes and re-renders them."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Regenerate statements that already exist.")
        parser.add_argument("--batch-size", type=int, help="Owners per transaction (default BILLING_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, force=False, batch_size=None, **options) -> dict:
        return statements_generate(now=now, dry_run=dry_run, force=force, batch_size=batch_size)
