"""Walking a table in fixed-size batches, each written in its own transaction (as billing does).

A crash rolls back the batch in flight and leaves every committed batch complete; the next run
carries on, because every job skips what is already done.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet


def batch_size(value: int | None = None) -> int:
    size = value or settings.ACCOUNTS_BATCH_SIZE
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return size


def value_batches(queryset: QuerySet, *fields: str, size: int) -> Iterator[list[dict]]:
    """``queryset.values(*fields)`` in primary-key order, ``size`` rows per list (keyset paging)."""
    last = None
    while True:
        page = queryset if last is None else queryset.filter(pk__gt=last)
        rows = list(page.order_by("pk").values("pk", *fields)[:size])
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        last = rows[-1]["pk"]


def delete_in_batches(queryset: QuerySet, *, size: int) -> int:
    """Delete ``queryset`` ``size`` rows per transaction, oldest keys first; returns rows deleted.

    Each batch commits on its own: a crash keeps what was deleted, and the next run deletes the
    rest (a delete job is idempotent by nature). Queries grow with batches, never rows.
    """
    deleted = 0
    while True:
        with transaction.atomic():
            keys = list(queryset.order_by("pk").values_list("pk", flat=True)[:size])
            if not keys:
                return deleted
            deleted += queryset.model.objects.filter(pk__in=keys).delete()[0]
        if len(keys) < size:
            return deleted
