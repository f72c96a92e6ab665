from __future__ import annotations

from accounts.services.affiliates import conversions_approve
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Approve pending affiliate conversions older than ACCOUNTS_AFFILIATE_HOLD_DAYS."

    def run_job(self, *, now, dry_run, **options) -> dict:
        return conversions_approve(now=now, dry_run=dry_run)
