from __future__ import annotations

from accounts.services.subscriptions import subscriptions_expire
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Expire ended trials and paid periods in bulk; unpublish or republish catalogs by plan; notify accounts."

    def run_job(self, *, now, dry_run, **options) -> dict:
        return subscriptions_expire(now=now, dry_run=dry_run)
