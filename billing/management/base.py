"""The billing jobs' command base: the platform's JobCommand, with PostgreSQL's JIT off."""

from __future__ import annotations

from contextlib import contextmanager

from django.db import DatabaseError, connection

from jobs.running.command import JobCommand


@contextmanager
def jit_disabled():
    """PostgreSQL compiles any query its planner costs above ``jit_above_cost``. Our paging
    queries (a correlated SUM per charge, walked by primary key) cost high and run in tenths
    of a second, less than JIT spends compiling them. Off for the job's session, back to the
    server's setting afterwards; SQLite has no JIT."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    try:
        yield
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("RESET jit")
        except DatabaseError:
            pass  # a broken connection is discarded anyway; never hide the job's own error


class BillingJobCommand(JobCommand):
    def handle(self, *args, **options) -> None:
        with jit_disabled():
            super().handle(*args, **options)
