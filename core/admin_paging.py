"""A paginator for admin lists over tables of millions of rows, which never counts the whole table.

Django's admin asks its paginator for ``count`` on every list page; on a table of millions an
exact ``COUNT(*)`` reads the whole table. This one counts at most ``limit + 1`` rows
(``SELECT COUNT(*) FROM (... LIMIT n)``, an index range of n rows):

- fewer than that: the exact count (a small table, or a narrow filter);
- more, on an unfiltered list on PostgreSQL: the planner's row estimate for the table
  (``pg_class.reltuples``, kept by autovacuum's ANALYZE), shown as "about N";
- more otherwise: "more than N", with pages up to N. The bound grows with the page asked for,
  so the pages after the current one are always reachable (an OFFSET that deep costs the same).
"""

from __future__ import annotations

from functools import cached_property
from math import ceil

from django.core.paginator import Paginator
from django.db import connections

# Rows counted before a list says "more than": a few ms through an index.
COUNT_LIMIT = 1000


def table_estimate(model, *, using: str) -> int | None:
    """PostgreSQL's estimate of the table's rows (None elsewhere, or before its first ANALYZE)."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [model._meta.db_table])
        row = cursor.fetchone()
    return row[0] if row and row[0] >= 0 else None


class EstimatedCountPaginator(Paginator):
    """``count`` is exact up to ``limit``, else an estimate (``estimated``) or a lower bound
    (``at_least``); the pagination template says which."""

    def __init__(self, object_list, per_page, *, unfiltered: bool = False, page: int = 1, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.unfiltered = unfiltered
        self.limit = COUNT_LIMIT + (page - 1) * per_page
        self.estimated = self.at_least = False

    @cached_property
    def count(self) -> int:
        bounded = self.object_list.order_by()[: self.limit + 1].count()
        if bounded <= self.limit:
            return bounded
        estimate = table_estimate(self.object_list.model, using=self.object_list.db) if self.unfiltered else None
        if estimate is not None and estimate > self.limit:
            self.estimated = True
            return estimate
        self.at_least = True
        return self.limit

    @cached_property
    def num_pages(self) -> int:
        # An estimate links no page past the bound: page 90,000 would be an OFFSET of millions.
        pages = super().num_pages
        return min(pages, ceil(self.limit / self.per_page)) if self.estimated else pages
