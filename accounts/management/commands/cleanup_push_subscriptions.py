from __future__ import annotations

from accounts.services.housekeeping import push_subscriptions_cleanup
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Delete Web Push subscriptions that expired or went unused for ACCOUNTS_PUSH_UNUSED_DAYS."

    def run_job(self, *, now, dry_run, **options) -> dict:
        return push_subscriptions_cleanup(now=now, dry_run=dry_run)
