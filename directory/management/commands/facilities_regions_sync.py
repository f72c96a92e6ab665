from __future__ import annotations

from directory.management.base import SourceSyncCommand


class Command(SourceSyncCommand):
    help = "Regions, then facilities, from the legacy source database (upsert; gone ones marked inactive)."
    entities = ("regions", "facilities")

    def run_job(self, *, now, dry_run, full=False, batch_size=None, **options) -> dict:
        # Weekly and small: always full, so regions and facilities gone from the source are found.
        return super().run_job(now=now, dry_run=dry_run, full=True, batch_size=batch_size, **options)
