from __future__ import annotations

from django.core.management.base import CommandError

from core.http_guard import DestinationRefused
from directory.intercom_client import IntercomNotConfigured
from directory.intercom_sync import IntercomPushFailed, intercom_push
from jobs.running.command import JobCommand


class Command(JobCommand):
    help = (
        "Push Active and Retired members to Intercom as contacts (only those whose fields changed since the last push)."
    )

    def add_job_arguments(self, parser) -> None:
        parser.add_argument("--batch-size", type=int, help="Members read per query (default DIRECTORY_BATCH_SIZE).")

    def run_job(self, *, now, dry_run, batch_size=None, **options) -> dict:
        bar = self.progress(iter(()), desc="members")
        try:
            return intercom_push(now=now, dry_run=dry_run, batch_size=batch_size, progress=bar.update)
        except (IntercomNotConfigured, IntercomPushFailed, DestinationRefused) as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
