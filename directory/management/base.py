"""The source syncs' command base: ``--full`` and ``--batch-size``, and source errors in words."""

from __future__ import annotations

from django.core.management.base import CommandError
from django.db import DatabaseError

from jobs.running.command import JobCommand

from ..sync import SyncRefused, entity_sync


class SourceSyncCommand(JobCommand):
    entities: tuple[str, ...] = ()

    def add_job_arguments(self, parser) -> None:
        parser.add_argument(
            "--full",
            action="store_true",
            help="Read every source row and mark inactive what the source no longer has (default: only "
            "rows changed since the last run, unless no full sync ran within DIRECTORY_FULL_SYNC_DAYS).",
        )
        parser.add_argument(
            "--batch-size", type=int, help="Source rows per transaction (default DIRECTORY_BATCH_SIZE)."
        )

    def run_job(self, *, now, dry_run, full=False, batch_size=None, **options) -> dict:
        summaries = {}
        for name in self.entities:
            bar = self.progress(iter(()), desc=name)  # advanced batch by batch; silent off a terminal
            try:
                summaries[name] = entity_sync(
                    name, now=now, full=full, dry_run=dry_run, batch_size=batch_size, progress=bar.update
                )
            except SyncRefused as exc:
                raise CommandError(str(exc)) from None
            except DatabaseError as exc:
                raise CommandError(f"Syncing {name} failed: {exc.__class__.__name__}: {exc}") from exc
            finally:
                bar.close()
        return summaries[self.entities[0]] if len(self.entities) == 1 else summaries
