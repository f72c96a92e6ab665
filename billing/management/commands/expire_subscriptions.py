from __future__ import annotations

from billing.management.base import BillingJobCommand
from billing.services.subscriptions import subscriptions_expire


class Command(BillingJobCommand):
    help = "Expire ended trials and paid periods in bulk; unpublish catalogs that needed the plan; notify accounts."

    def run_job(self, *, now, dry_run, **options) -> dict:
        return subscriptions_expire(now=now, dry_run=dry_run)
