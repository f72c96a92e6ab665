"""generate-charges on 100,000 active leases (PostgreSQL), against in the same run:

* the physical limit: one hand-written ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` of the
  same rows (goal: the job within 1.5x of it on the first run);
* the source documents' loop: one ``LedgerEntry.objects.create()`` per lease;
* the re-run with every charge present, against the raw statement's re-run (goal: no slower);
* Django's ``bulk_create`` (the job's ORM path, used on SQLite), for reference;
* peak Python memory of the job at 10,000 and 100,000 leases (goal: flat).

Each measurement starts from an empty ledger and zero balances. The job's figure includes
moving every lease balance in the same statement; the raw statement does not.

    .venv/bin/python bench/billing_charges.py [-n 100000] [--per-row N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.billing_common import build_leases, django_setup, drop_database, line, peak_memory, sql, timed  # noqa: E402

DATABASE = "cronhouse_bench_billing"

RAW = """
INSERT INTO billing_ledgerentry (lease_id, kind, category, description, amount, period, due_date, posted_on, created_at)
SELECT l.id, 'charge', 'rent',
       CASE WHEN d.days = 28 THEN 'Rent - February 2025'
            ELSE 'Rent - February 2025 (prorated, ' || d.days || ' of 28 days)' END,
       ROUND(l.monthly_rent * d.days / 28, 2), DATE '2025-02-01',
       GREATEST(DATE '2025-02-01' + (LEAST(l.due_day, 28) - 1), l.start_date), DATE '2025-02-01', now()
FROM billing_lease l
CROSS JOIN LATERAL (SELECT LEAST(COALESCE(l.end_date, DATE '2025-02-28'), DATE '2025-02-28')
                           - GREATEST(l.start_date, DATE '2025-02-01') + 1 AS days) d
WHERE l.status IN ('active', 'ended') AND l.start_date <= DATE '2025-02-28'
  AND (l.end_date IS NULL OR l.end_date >= DATE '2025-02-01')
ON CONFLICT (lease_id, period) WHERE kind = 'charge' AND category = 'rent' DO NOTHING
"""

# The same work as the job by hand: the rows, and every lease balance moved by its charge.
RAW_WITH_BALANCES = f"""
WITH inserted AS ({RAW} RETURNING lease_id, amount)
UPDATE billing_lease l SET balance = l.balance + i.amount FROM inserted i WHERE l.id = i.lease_id
"""


def reset() -> None:
    """An empty ledger, zero balances, fresh statistics, and no checkpoint debt."""
    sql("TRUNCATE billing_ledgerentry CASCADE")
    sql("UPDATE billing_lease SET balance = 0")
    sql("VACUUM ANALYZE billing_ledgerentry")
    sql("VACUUM ANALYZE billing_lease")
    sql("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--leases", type=int, default=100_000)
    parser.add_argument("--per-row", type=int, default=None, help="leases for the create() loop (default: all)")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of raw and job (median)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    django_setup(DATABASE)
    from django.db import connection

    from billing.models import Lease, LedgerEntry
    from billing.periods import due_date
    from billing.services.charges import charges_generate, rent_charge_amount, rent_charge_description
    from tests.billing.conftest import at

    now = at("2025-02-01", 6)
    connection.ensure_connection()
    connection.connection.autocommit = True  # VACUUM runs outside a transaction
    build_leases(args.leases)
    r: dict[str, float] = {}

    # Raw statement and job alternate, --repeat times each, and each figure is the median:
    # the machine is shared, and one measurement of each would mostly measure the neighbours.
    samples: dict[str, list[float]] = {
        "raw": [],
        "raw_rerun": [],
        "job": [],
        "job_rerun": [],
        "raw_balances": [],
        "job_no_balances": [],
    }
    from billing.services import charges as service

    insert_only = service.CHARGE_BATCH_SQL.replace(
        "UPDATE billing_lease l SET balance = l.balance + i.amount FROM inserted i WHERE l.id = i.lease_id\n"
        "    RETURNING 1",
        "SELECT 1 FROM inserted",
    )
    assert insert_only != service.CHARGE_BATCH_SQL
    raw_rows = None
    for _ in range(args.repeat):
        reset()
        with timed(r, "raw"):
            sql(RAW)
        with timed(r, "raw_rerun"):
            sql(RAW)
        assert LedgerEntry.objects.count() == args.leases
        raw_rows = raw_rows or set(LedgerEntry.objects.values_list("lease_id", "amount", "due_date", "description"))
        reset()
        with timed(r, "job"):
            first = charges_generate(now=now)
        with timed(r, "job_rerun"):
            again = charges_generate(now=now)
        assert first["charges_created"] == args.leases and again["already_present"] == args.leases, (first, again)
        assert set(LedgerEntry.objects.values_list("lease_id", "amount", "due_date", "description")) == raw_rows
        assert Lease.objects.filter(balance=0).count() == 0
        reset()
        with timed(r, "raw_balances"):
            sql(RAW_WITH_BALANCES)
        reset()
        original, service.CHARGE_BATCH_SQL = service.CHARGE_BATCH_SQL, insert_only
        with timed(r, "job_no_balances"):
            charges_generate(now=now)
        service.CHARGE_BATCH_SQL = original
        for name in samples:
            samples[name].append(r[name])
    for name, values in samples.items():
        r[name] = statistics.median(values)

    reset()
    with timed(r, "orm"):
        charges_generate(now=now, strategy="orm")
    with timed(r, "orm_rerun"):
        charges_generate(now=now, strategy="orm")

    reset()
    per_row = args.per_row or args.leases
    leases = list(
        Lease.objects.order_by("id").values("id", "monthly_rent", "start_date", "end_date", "due_day")[:per_row]
    )
    period = now.date().replace(day=1)
    with timed(r, "per_row"):
        for lease in leases:  # the source documents' loop
            if LedgerEntry.objects.filter(lease_id=lease["id"], period=period, kind="charge").exists():
                continue
            amount, days = rent_charge_amount(
                period=period, monthly_rent=lease["monthly_rent"], start=lease["start_date"], end=lease["end_date"]
            )
            LedgerEntry.objects.create(
                lease_id=lease["id"],
                kind="charge",
                category="rent",
                amount=amount,
                period=period,
                posted_on=period,
                description=rent_charge_description(period=period, days=days),
                due_date=max(due_date(period, lease["due_day"]), lease["start_date"]),
            )
    r["per_row"] *= args.leases / per_row

    # Peak memory: the same job on a tenth of the leases, then on all of them.
    reset()
    small = args.leases // 10
    sql(f"UPDATE billing_lease SET status = 'draft' WHERE id > (SELECT min(id) FROM billing_lease) + {small - 1}")
    _, mem_small = peak_memory(lambda: charges_generate(now=now))
    sql("UPDATE billing_lease SET status = 'active'")
    reset()
    _, mem_all = peak_memory(lambda: charges_generate(now=now))

    n = f"{args.leases:,}"
    print(f"generate-charges, {n} active leases, PostgreSQL (one run: medians of {args.repeat} alternating runs)")
    print(
        line(
            "job, first run (INSERT..SELECT + balances)",
            r["job"],
            "raw INSERT..SELECT ON CONFLICT",
            r["raw"],
            "goal <= 1.5x",
        )
    )
    print(
        line(
            "job, first run (same work)",
            r["job"],
            "raw INSERT..SELECT + balance UPDATE",
            r["raw_balances"],
            "same work by hand",
        )
    )
    print(
        line(
            "job without balance moves (analysis only)",
            r["job_no_balances"],
            "raw INSERT..SELECT ON CONFLICT",
            r["raw"],
            "what the balances cost",
        )
    )
    print(
        line(
            "job, re-run, all present (anti-join)",
            r["job_rerun"],
            "raw statement re-run",
            r["raw_rerun"],
            "goal <= 1.0x",
        )
    )
    extrapolated = " (extrapolated)" if per_row < args.leases else ""
    print(
        line(
            "per-row create() loop" + extrapolated, r["per_row"], "job, first run", r["job"], "job is this much faster"
        )
    )
    print(
        line("ORM path: bulk_create (SQLite's path)", r["orm"], "raw INSERT..SELECT ON CONFLICT", r["raw"], "reference")
    )
    print(line("ORM path re-run", r["orm_rerun"], "raw statement re-run", r["raw_rerun"], "reference"))
    print(
        f"{'peak Python memory, job':<44} {mem_small / 1e6:8.2f} MB at {small:,} leases   "
        f"{mem_all / 1e6:8.2f} MB at {n} leases   ratio {mem_all / max(mem_small, 1):6.2f}x   (goal: flat)"
    )
    if not args.keep:
        drop_database(DATABASE)


if __name__ == "__main__":
    main()
