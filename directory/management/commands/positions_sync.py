from __future__ import annotations

from directory.management.base import SourceSyncCommand


class Command(SourceSyncCommand):
    help = "Members' position assignments from the legacy source database (upsert; gone ones marked inactive)."
    entities = ("positions",)
