from __future__ import annotations

from accounts.services.credits import low_credits_check
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Tell each account that fell below its credit threshold, once per crossing (and the administrators)."

    def run_job(self, *, now, dry_run, **options) -> dict:
        return low_credits_check(now=now, dry_run=dry_run)
