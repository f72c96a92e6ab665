"""Shared set-up for the billing benchmarks: a PostgreSQL database of their own, migrated,
and 100,000-row data sets built with set-based SQL (so building is not what we measure)."""

from __future__ import annotations

import os
import sys
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")


def django_setup(database: str) -> None:
    """Recreate ``database`` on the server, point Django at it, migrate quietly."""
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{database}"')
    os.environ["DATABASE_URL"] = f"{SERVER}/{database}"
    os.environ.setdefault("CRONHOUSE_VAR_DIR", f"/tmp/{database}-var")
    # As in production: DEBUG's query log would format and keep every statement's SQL.
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(BASE_DIR))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)


def drop_database(database: str) -> None:
    import psycopg
    from django.db import connections

    connections.close_all()
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def sql(statement: str, params=None) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def build_leases(count: int) -> None:
    """One owner per 24 leases, 8 units a property, one tenant per lease; all leases active
    for the whole benchmark month except every 50th, which starts mid-month (prorated)."""
    sql(
        f"INSERT INTO billing_owner (name, email, address, management_fee_percent, created_at) "
        f"SELECT 'Owner ' || g, 'owner' || g || '@bench.test', '', 8.00, now() "
        f"FROM generate_series(1, {count // 24 + 1}) g"
    )
    sql(
        f"INSERT INTO billing_property (owner_id, name, address) "
        f"SELECT (SELECT min(id) FROM billing_owner) + (g - 1) / 3, 'Property ' || g, '' "
        f"FROM generate_series(1, {count // 8 + 1}) g"
    )
    sql(
        f"INSERT INTO billing_unit (property_id, name) "
        f"SELECT (SELECT min(id) FROM billing_property) + (g - 1) / 8, 'Unit ' || g FROM generate_series(1, {count}) g"
    )
    sql(
        f"INSERT INTO billing_tenant (name, email, autopay_enrolled) "
        f"SELECT 'Tenant ' || g, 'tenant' || g || '@bench.test', g % 3 = 0 FROM generate_series(1, {count}) g"
    )
    sql(f"""
        INSERT INTO billing_lease (unit_id, tenant_id, start_date, end_date, monthly_rent, due_day, status, balance,
                                   created_at)
        SELECT u.id, t.id,
               CASE WHEN g % 50 = 0 THEN DATE '2025-02-11' ELSE DATE '2024-01-01' END,
               NULL, 800 + (g % 120) * 25 + (g % 7) * 0.33, 1 + g % 28, 'active', 0, now()
        FROM generate_series(1, {count}) g
        JOIN billing_unit u ON u.id = (SELECT min(id) FROM billing_unit) + g - 1
        JOIN billing_tenant t ON t.id = (SELECT min(id) FROM billing_tenant) + g - 1
    """)
    sql("ANALYZE")


@contextmanager
def timed(results: dict, name: str):
    start = time.perf_counter()
    yield
    results[name] = time.perf_counter() - start


def peak_memory(function) -> tuple[float, int]:
    """(seconds, peak Python heap bytes) of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    function()
    elapsed = time.perf_counter() - start
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak


def line(name: str, seconds: float, baseline_name: str, baseline: float, goal: str) -> str:
    ratio = seconds / baseline if baseline else float("inf")
    return f"{name:<44} {seconds:8.3f} s   {baseline_name:<34} {baseline:8.3f} s   ratio {ratio:6.2f}x   ({goal})"
