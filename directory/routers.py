"""Routes the legacy source's models to the read-only ``legacy`` alias, and nothing else there."""

from __future__ import annotations

SOURCE_ALIAS = "legacy"


class SourceDatabaseReadOnly(Exception):
    """Something tried to write to the legacy source database."""


def is_source_model(model) -> bool:
    from .models import SourceModel

    return isinstance(model, type) and issubclass(model, SourceModel)


class SourceDatabaseRouter:
    """Reads of source models go to ``legacy``; every write to them is refused, and no migration
    runs on ``legacy`` (its tables belong to the legacy system)."""

    def db_for_read(self, model, **hints):
        return SOURCE_ALIAS if is_source_model(model) else None

    def db_for_write(self, model, **hints):
        if is_source_model(model):
            raise SourceDatabaseReadOnly(f"{model.__name__} is a table of the legacy source, which is read-only.")
        return None

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if db == SOURCE_ALIAS:
            return False
        return None
