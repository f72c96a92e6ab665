from __future__ import annotations

from accounts.services.housekeeping import invitations_cleanup
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Delete pending invitations past their expiry."

    def run_job(self, *, now, dry_run, **options) -> dict:
        return invitations_cleanup(now=now, dry_run=dry_run)
