"""generate-charges on 100,000 active leases (PostgreSQL), against in the same run:

* the baseline a user would otherwise write: one hand-written ``INSERT ... SELECT ... ON
  CONFLICT DO NOTHING`` of the same ledger rows (goal: the job within 1.5x of it);
* that statement followed by one balance ``UPDATE``: the same work as the job, by hand;
* the re-run with every charge present, against the raw statement's re-run (goal: no slower);
* peak Python memory of the job at 10,000 and 100,000 leases (goal: flat).

Each measurement starts from an empty ledger and zero balances. Raw statement and job
alternate ``--repeat`` times and each figure is the median: the machine is shared, and one
measurement of each would mostly measure the neighbours.

    .venv/bin/python bench/billing_charges.py [-n 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
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

ROW_FIELDS = ("lease_id", "amount", "due_date", "description")


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
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of raw and job (median)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args()
    django_setup(DATABASE)
    from django.core.management import call_command
    from django.db import connection

    from billing.models import Lease, LedgerEntry

    def charges_generate() -> dict:
        """The job as the platform runs it: its command (which also turns PostgreSQL's JIT off)."""
        return call_command("generate_charges", "--as-of", "2025-02-01T06:00:00", stdout=io.StringIO())

    connection.ensure_connection()
    connection.connection.autocommit = True  # VACUUM runs outside a transaction
    build_leases(args.leases)
    r: dict[str, float] = {}
    samples: dict[str, list[float]] = {"raw": [], "raw_rerun": [], "job": [], "job_rerun": [], "raw_balances": []}
    for _ in range(args.repeat):
        reset()
        with timed(r, "raw"):
            sql(RAW)
        with timed(r, "raw_rerun"):
            sql(RAW)
        raw_rows = set(LedgerEntry.objects.values_list(*ROW_FIELDS))
        assert len(raw_rows) == args.leases
        reset()
        with timed(r, "job"):
            first = charges_generate()
        with timed(r, "job_rerun"):
            again = charges_generate()
        assert first["charges_created"] == args.leases and again["already_present"] == args.leases, (first, again)
        assert set(LedgerEntry.objects.values_list(*ROW_FIELDS)) == raw_rows
        assert Lease.objects.filter(balance=0).count() == 0
        reset()
        with timed(r, "raw_balances"):
            sql(RAW_WITH_BALANCES)
        for name in samples:
            samples[name].append(r[name])
    for name, values in samples.items():
        r[name] = statistics.median(values)

    # Peak memory: the same job on a tenth of the leases, then on all of them.
    reset()
    small = args.leases // 10
    sql(f"UPDATE billing_lease SET status = 'draft' WHERE id > (SELECT min(id) FROM billing_lease) + {small - 1}")
    _, mem_small = peak_memory(lambda: charges_generate())
    sql("UPDATE billing_lease SET status = 'active'")
    reset()
    _, mem_all = peak_memory(lambda: charges_generate())

    n = f"{args.leases:,}"
    print(f"generate-charges, {n} active leases, PostgreSQL (medians of {args.repeat} alternating runs)")
    print(line("job, first run", r["job"], "raw INSERT..SELECT ON CONFLICT", r["raw"], "goal <= 1.5x"))
    print(line("job, first run", r["job"], "raw INSERT..SELECT + balance UPDATE", r["raw_balances"], "same work"))
    print(line("job, re-run, all present", r["job_rerun"], "raw statement re-run", r["raw_rerun"], "goal <= 1.0x"))
    print(
        f"{'peak Python memory, job':<44} {mem_small / 1e6:8.2f} MB at {small:,} leases   "
        f"{mem_all / 1e6:8.2f} MB at {n} leases   ratio {mem_all / max(mem_small, 1):6.2f}x   (goal: flat)"
    )
    if not args.keep:
        drop_database(DATABASE)


if __name__ == "__main__":
    main()
