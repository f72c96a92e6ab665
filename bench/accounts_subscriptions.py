"""expire-subscriptions on 100,000 subscriptions, half of them due, against per-row save()
(PostgreSQL, one run). Goal: at least 50x faster than per-row.

Two comparisons, each side doing the same work:
* expiry alone: the job's bulk UPDATEs (+ catalogs) against ``sub.save()`` per due row;
* the whole job (also one expiry notice queued per account through notifications) against
  ``save()`` + catalog check + ``notification_enqueue()`` per due row.
Per-row loops run on a sample (default 5,000 due rows) and are scaled to all due rows.
Peak Python memory of the whole job at 10,000 and 100,000 subscriptions: goal flat.

    .venv/bin/python bench/accounts_subscriptions.py [-n 100000] [--sample 5000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.billing_common import django_setup, drop_database, line, peak_memory, sql  # noqa: E402

DATABASE = "cronhouse_bench_accounts_subs"
NOW = "2025-03-01 12:00:00+00"


def build(count: int) -> None:
    """Accounts 1:1 with subscriptions. Due: every 4th a trial ended yesterday, every 4th+1 an
    active period ended yesterday; the rest end in the future. Pro/business accounts own a
    published catalog."""
    sql("TRUNCATE accounts_catalog, accounts_subscription, accounts_account, accounts_plan RESTART IDENTITY CASCADE")
    sql("TRUNCATE notifications_notification CASCADE")  # and the dedupe keys that point at them
    sql(
        "INSERT INTO accounts_plan (code, name, monthly_price, trial_days, includes_catalog) VALUES "
        "('starter', 'Starter', 29, 14, false), ('pro', 'Pro', 79, 14, true), ('business', 'Business', 199, 14, true)"
    )
    sql(
        f"INSERT INTO accounts_account (name, email, created_at) "
        f"SELECT 'Account ' || g, 'account' || g || '@bench.test', now() FROM generate_series(1, {count}) g"
    )
    sql(f"""
        INSERT INTO accounts_subscription (account_id, plan_id, status, started_at, trial_ends_at, current_period_end)
        SELECT g, 1 + g % 3,
               CASE WHEN g % 4 IN (0, 2) THEN 'trial' ELSE 'active' END,
               TIMESTAMPTZ '{NOW}' - interval '20 days',
               CASE WHEN g % 4 = 0 THEN TIMESTAMPTZ '{NOW}' - interval '1 day'
                    WHEN g % 4 = 2 THEN TIMESTAMPTZ '{NOW}' + interval '5 days' END,
               CASE WHEN g % 4 = 1 THEN TIMESTAMPTZ '{NOW}' - interval '1 day'
                    WHEN g % 4 = 3 THEN TIMESTAMPTZ '{NOW}' + interval '20 days' END
        FROM generate_series(1, {count}) g
    """)
    sql(
        "INSERT INTO accounts_catalog (account_id, name, required_plan_id, published, unpublished_reason) "
        "SELECT account_id, 'Catalog ' || account_id, plan_id, true, '' FROM accounts_subscription WHERE plan_id > 1"
    )
    sql("VACUUM ANALYZE")
    sql("CHECKPOINT")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--subscriptions", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=5_000, help="due rows the per-row loops handle")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    django_setup(DATABASE)
    from django.db import connection
    from django.db.models import Exists, OuterRef
    from django.utils.dateparse import parse_datetime

    from accounts.models import Catalog, Subscription
    from accounts.services import subscriptions as service
    from notifications.services import notification_enqueue

    now = parse_datetime(NOW.replace(" ", "T").replace("+00", "+00:00"))
    connection.ensure_connection()
    connection.connection.autocommit = True
    due = args.subscriptions // 2
    r = {}

    build(args.subscriptions)
    start = time.perf_counter()
    with __import__("django.db", fromlist=["transaction"]).transaction.atomic():
        trials = service.trials_ended(now).update(status="expired", expired_at=now)
        periods = service.periods_ended(now).update(status="expired", expired_at=now)
    r["expiry_bulk"] = time.perf_counter() - start
    assert trials + periods == due

    build(args.subscriptions)
    start = time.perf_counter()
    summary = service.subscriptions_expire(now=now)
    r["job"] = time.perf_counter() - start
    assert summary["trials_expired"] + summary["periods_expired"] == due, summary
    assert summary["notices_queued"] == due, summary

    def per_row(with_everything: bool) -> float:
        build(args.subscriptions)
        rows = list(
            (service.trials_ended(now) | service.periods_ended(now))
            .select_related("account", "plan")
            .order_by("id")[: args.sample]
        )
        start = time.perf_counter()
        for sub in rows:  # the source documents' loop
            sub.status, sub.expired_at = Subscription.Status.EXPIRED, now
            sub.save()
            if with_everything:
                live = Subscription.objects.filter(account=sub.account_id, plan=sub.plan_id).exclude(status="expired")
                Catalog.objects.filter(account=sub.account_id, required_plan=sub.plan_id, published=True).exclude(
                    Exists(live.filter(account=OuterRef("account")))
                ).update(published=False, unpublished_at=now)
                notification_enqueue(
                    recipient=sub.account.email,
                    template="accounts/subscription_expired",
                    context={"account_name": sub.account.name, "plans": [sub.plan.name], "was_trial": True},
                    dedupe_key=f"subscription-expired:{sub.account_id}:{sub.pk}",
                )
        return (time.perf_counter() - start) * due / len(rows)

    r["per_row_save"] = per_row(False)
    r["per_row_all"] = per_row(True)

    small = args.subscriptions // 10
    build(small)
    _, mem_small = peak_memory(lambda: service.subscriptions_expire(now=now))
    build(args.subscriptions)
    _, mem_all = peak_memory(lambda: service.subscriptions_expire(now=now))

    print(f"expire-subscriptions, {args.subscriptions:,} subscriptions, {due:,} due, PostgreSQL (one run)")
    scaled = f"(per-row: {args.sample:,} rows, scaled)"
    print(
        line(
            "expiry: bulk UPDATEs",
            r["expiry_bulk"],
            "per-row save() " + scaled,
            r["per_row_save"],
            f"speed-up {r['per_row_save'] / r['expiry_bulk']:.0f}x, goal >= 50x",
        )
    )
    print(
        line(
            "whole job (+ catalogs + notices)",
            r["job"],
            "per-row save+catalog+enqueue",
            r["per_row_all"],
            f"speed-up {r['per_row_all'] / r['job']:.0f}x, goal >= 50x",
        )
    )
    print(
        f"{'peak Python memory, whole job':<44} {mem_small / 1e6:8.2f} MB at {small:,}   "
        f"{mem_all / 1e6:8.2f} MB at {args.subscriptions:,}   ratio {mem_all / max(mem_small, 1):6.2f}x (goal: flat)"
    )
    if not args.keep:
        drop_database(DATABASE)


if __name__ == "__main__":
    main()
