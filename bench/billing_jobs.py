"""Every billing job on the seed_demo data set at two sizes (PostgreSQL): time, queries and
peak memory per job. Goal: memory flat as rows grow (jobs stream in batches; nothing loads a
table) and queries growing only with the number of batches.

Each size gets its own database, seeded with ``seed_demo --count N --as-of 2025-03-15``
(owners, leases in every state, three months of history, subscriptions in every state).
Then each job runs once, in a process of its own, at an --as-of chosen so it has work to
do: the figures are that process's wall time, its peak resident memory (VmHWM; the
first row is a process that only starts Django, the floor under every figure) and the
number of statements it sent (counted by a connection execute wrapper, nothing stored).

    .venv/bin/python bench/billing_jobs.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.billing_common import SERVER, django_setup, drop_database  # noqa: E402

SEED_AS_OF = "2025-03-15"
RUNS = [  # job command, --as-of: a moment at which it has work on the demo data
    ("generate_charges", "2025-04-01T06:00:00"),
    ("recurring_expenses", "2025-04-01T07:00:00"),
    ("reconciliation", "2025-04-01T09:00:00"),
    ("financial_reconciliation", "2025-03-15T11:00:00"),
    ("autopay_reminders", "2025-04-02T14:00:00"),
    ("rent_reminders", "2025-04-02T15:00:00"),
    ("overdue_notices", "2025-04-20T16:00:00"),
    ("lease_expiration", "2025-03-15T07:00:00"),
    ("trial_reminders", "2025-03-15T09:00:00"),
    ("expire_subscriptions", "2025-03-16T12:00:00"),
    ("generate_statements", "2025-04-01T08:00:00"),
    ("generate_payouts", "2025-04-02T10:00:00"),
    ("generate_analytics", "2025-04-02T01:00:00"),
]


def run_one(database: str, command: str, as_of: str) -> None:
    """In the child: set up Django on ``database``, run the job, print queries and summary."""
    os.environ["DATABASE_URL"] = f"{SERVER}/{database}"
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("CRONHOUSE_VAR_DIR", f"/tmp/{database}-var")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    count = [0]

    def counter(execute, sql, params, many, context):
        count[0] += 1
        return execute(sql, params, many, context)

    summary = {}
    if command != "-":
        with connection.execute_wrapper(counter):
            summary = call_command(command, "--as-of", as_of, stdout=io.StringIO())
    # VmHWM: this process image's peak resident set (ru_maxrss would also count the parent's
    # memory at fork time, which exec does not reset).
    status = Path("/proc/self/status").read_text()
    peak_kb = int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])
    print("RESULT " + json.dumps({"queries": count[0], "summary": summary, "rss_mb": peak_kb / 1024}, default=str))


def child(database: str, command: str, as_of: str) -> dict:
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, __file__, "--run-one", database, command, as_of], stdout=subprocess.PIPE, text=True
    )
    output = process.stdout.read()
    _, status = os.waitpid(process.pid, 0)
    elapsed = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{command} failed: {output[-2000:]}")
    result = json.loads(output.split("RESULT ", 1)[1])
    return {"seconds": elapsed, **result}


def measure(size: int) -> dict[str, dict]:
    database = f"cronhouse_bench_billing_jobs_{size}"
    django_setup(database)
    from django.core.management import call_command

    start = time.perf_counter()
    call_command("seed_demo", apps=["billing"], count=size, as_of=SEED_AS_OF, stdout=io.StringIO())
    print(f"  seeded {size:,} leases in {time.perf_counter() - start:.1f} s", flush=True)
    results = {"(django only)": child(database, "-", "-")}
    for command, as_of in RUNS:
        results[command] = child(database, command, as_of)
        print(f"  {command}: {results[command]['seconds']:.1f} s", flush=True)
    drop_database(database)
    return results


def headline(summary: dict) -> str:
    keys = [k for k, v in summary.items() if isinstance(v, int) and not isinstance(v, bool)][:3]
    return ", ".join(f"{k}={summary[k]}" for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000])
    args = parser.parse_args()
    small, large = args.sizes
    results = {}
    for size in (small, large):
        print(f"measuring {size:,} leases ...", flush=True)
        # A process per size: Django binds one database per process.
        output = subprocess.run(
            [sys.executable, __file__, "--size", str(size)], stdout=subprocess.PIPE, text=True, check=True
        ).stdout
        print(output.split("SIZE-RESULT ")[0], end="")
        results[size] = json.loads(output.split("SIZE-RESULT ", 1)[1])
    print(f"\nbilling jobs on seed_demo data, PostgreSQL: {small:,} vs {large:,} leases, one process per job")
    print(f"{'job':<26}{'seconds':>17}{'queries':>15}{'peak RSS MB':>17}  work done at {large:,}")
    for name in results[small]:
        a, b = results[small][name], results[large][name]
        print(
            f"{name:<26}{a['seconds']:8.2f}{b['seconds']:9.2f}{a['queries']:>7}{b['queries']:>8}"
            f"{a['rss_mb']:8.1f}{b['rss_mb']:9.1f}  {headline(b['summary'])}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--run-one":
        run_one(*sys.argv[2:])
    elif len(sys.argv) == 3 and sys.argv[1] == "--size":
        print("SIZE-RESULT " + json.dumps(measure(int(sys.argv[2]))))
    else:
        main()
