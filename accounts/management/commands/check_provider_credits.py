from __future__ import annotations

from accounts.services.provider_credits import provider_credits_check
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Check each API provider key in ACCOUNTS_CREDIT_PROVIDERS; e-mail the administrators when refused or low."

    def run_job(self, *, now, dry_run, **options) -> dict:
        summary, unchecked = provider_credits_check(now=now, dry_run=dry_run)
        for message in unchecked:
            self.warn(message)
        return summary
