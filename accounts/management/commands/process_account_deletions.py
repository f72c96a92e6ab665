from __future__ import annotations

from django.core.management.base import CommandError

from accounts.services.deletions import account_deletions_process
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Carry out the GDPR deletion requests whose grace period has passed (ACCOUNTS_DELETION_GRACE_DAYS)."

    def run_job(self, *, now, dry_run, **options) -> dict:
        summary, failures = account_deletions_process(now=now, dry_run=dry_run)
        if failures:
            # A customer's data still held past their deadline is a failed run, not a warning.
            raise CommandError(
                f"process-account-deletions: {summary['requests_completed']} completed, {len(failures)} stopped "
                f"(kept in progress; the next run resumes them): {'; '.join(failures)}"
            )
        return summary
