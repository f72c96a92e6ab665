from __future__ import annotations

from accounts.services.analytics import subscription_snapshot_create
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = "Yesterday's subscription snapshot: MRR and subscriptions (active, trial, new, churned)."

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--force", action="store_true", help="Recompute a snapshot that already exists.")

    def run_job(self, *, now, dry_run, force=False, **options) -> dict:
        return subscription_snapshot_create(now=now, dry_run=dry_run, force=force)
