from __future__ import annotations

from directory.management.base import SourceSyncCommand


class Command(SourceSyncCommand):
    help = "Member records from the legacy source database: upsert, incremental by updated_at, missing ones inactive."
    entities = ("members",)
