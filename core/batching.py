"""Walking big tables in fixed-size batches, each written in its own transaction.

A batch is the unit of work and of failure: a crash rolls back the batch in flight and
leaves every committed batch complete, and the next run carries on (every job skips what
is already done). The queries a job issues grow with the number of batches, never with rows.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.db import connection, transaction
from django.db.models import QuerySet


def batch_size_checked(size: int) -> int:
    """``size``, refused below one (each app reads its own default from its settings)."""
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return size


def value_batches(queryset: QuerySet, *fields: str, size: int) -> Iterator[list[dict]]:
    """``queryset.values(*fields)`` in primary-key order, ``size`` rows per list (keyset paging:
    each page is one indexed query however deep into the table it is)."""
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


def statistics_refresh(model) -> None:
    """ANALYZE a table a job is filling, between its batches (both databases accept the statement).

    The jobs pick their next batch with NOT EXISTS against the table they write. Planned from
    statistics taken while that table was nearly empty, PostgreSQL's anti-join becomes a nested
    loop over every row written so far, which grows with the square of the rows. ANALYZE samples
    a bounded number of rows on PostgreSQL; on SQLite, the embedded mode's small tables, it reads them.
    """
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{model._meta.db_table}"')


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
