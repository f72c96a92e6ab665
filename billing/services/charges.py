"""generate-charges: one rent CHARGE per lease and month, prorated by day.

A lease is billed for a month when it was signed (active or since ended) and its dates
overlap the month: ``start_date <= month end`` and ``end_date`` empty or ``>= month start``.
Proration: ``round(monthly_rent * days_in_lease_this_month / days_in_month, 2)`` half up.
The due date is the lease's due day in the month (clamped to its last day), or the lease's
first day if that is later.

Each batch is one transaction, the same on either database: one ``INSERT ... SELECT ... ON
CONFLICT DO NOTHING`` writes its charges (the rows never reach Python), one ``UPDATE`` moves
each lease balance by the charge the batch inserted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet

from ..batching import batch_size as resolve_batch_size
from ..models import Lease, LedgerEntry
from ..periods import days_in_month, local_date, month_end, month_label, month_start

Kind = LedgerEntry.Kind
Category = LedgerEntry.Category

# SQL that SQLite and PostgreSQL both accept. They share no function that turns a date into a
# day of the month, so the month's days come in as a small table (``calendar``) that each lease
# joins on its start, end and due day; a date outside the month has no row there and stands for
# the month's first or last day. Money is counted in integer cents: SQLite keeps decimals as
# floating point, whose ROUND() can take a half cent down; integer division rounds the same way
# on both. A lease charged already is skipped by ON CONFLICT (one unique-index probe, whatever
# the planner's statistics say). The conflict target names the constraint's condition in the
# order of its index, as SQLite matches it as written; the statement starts with INSERT, not
# WITH, so that Python's sqlite3 reports its row count.
CHARGE_INSERT_SQL = """
INSERT INTO billing_ledgerentry
    (lease_id, kind, category, description, amount, period, due_date, posted_on, created_at)
WITH calendar (on_date, day_number) AS (VALUES {calendar})
SELECT priced.id, 'charge', 'rent',
       CASE WHEN priced.days = %(days_in_month)s THEN %(label)s
            ELSE %(label)s || ' (prorated, ' || priced.days || %(of_days)s END,
       priced.amount_cents / 100.0, %(period)s,
       CASE WHEN priced.start_date > priced.due_on THEN priced.start_date ELSE priced.due_on END,
       %(period)s, %(now)s
FROM (
    SELECT dated.id, dated.start_date, dated.due_on, dated.days,
           (dated.rent_cents * dated.days * 2 + %(days_in_month)s) / (2 * %(days_in_month)s) AS amount_cents
    FROM (
        SELECT l.id, l.start_date,
               CAST(ROUND(l.monthly_rent * 100) AS BIGINT) AS rent_cents,
               COALESCE(last_day.day_number, %(days_in_month)s) - COALESCE(first_day.day_number, 1) + 1 AS days,
               COALESCE(due_day.on_date, %(month_end)s) AS due_on
        FROM billing_lease l
        LEFT JOIN calendar first_day ON first_day.on_date = l.start_date
        LEFT JOIN calendar last_day ON last_day.on_date = l.end_date
        LEFT JOIN calendar due_day ON due_day.day_number = l.due_day
        WHERE l.id > %(after)s AND l.id <= %(last)s
          AND l.status IN ('active', 'ended')
          AND l.start_date <= %(month_end)s
          AND (l.end_date IS NULL OR l.end_date >= %(period)s)
    ) dated
) priced
WHERE priced.amount_cents > 0
ON CONFLICT (lease_id, period) WHERE category = 'rent' AND kind = 'charge' DO NOTHING
"""


# Each lease's balance moved by the charge this batch inserted, as one join. UPDATE ... FROM is
# SQL both databases accept (SQLite since 3.33); the ORM's form of it, a correlated subquery
# per lease, took longer than the INSERT itself.
BALANCE_MOVE_SQL = """
UPDATE "billing_lease"
   SET balance = billing_lease.balance + charged.amount
  FROM (SELECT lease_id, amount FROM billing_ledgerentry
         WHERE id > %(newest)s AND kind = 'charge' AND category = 'rent' AND period = %(period)s
           AND created_at = %(now)s AND lease_id > %(after)s AND lease_id <= %(last)s) AS charged
 WHERE billing_lease.id = charged.lease_id
"""


@dataclass
class BatchResult:
    last_lease_id: int | None
    processed: int
    created: int
    already_present: int
    errors: int = 0  # billable but nothing to charge: a lease with no rent set

    @property
    def done(self) -> bool:
        return self.last_lease_id is None


def billable_leases(period: date) -> QuerySet:
    return Lease.objects.filter(
        Q(end_date__isnull=True) | Q(end_date__gte=period),
        status__in=[Lease.Status.ACTIVE, Lease.Status.ENDED],
        start_date__lte=month_end(period),
    )


def rent_charges(period: date) -> QuerySet:
    return LedgerEntry.objects.filter(kind=Kind.CHARGE, category=Category.RENT, period=period)


def charge_rows_insert(*, period: date, after: int, last: int, now: datetime) -> int:
    """Insert the missing rent charges of the billable leases with ``after < id <= last``;
    returns how many were inserted."""
    dim = days_in_month(period)
    as_date = LedgerEntry._meta.get_field("period")
    as_time = LedgerEntry._meta.get_field("created_at")
    # Each value as the ORM would send it for its column: SQLite keeps dates and times as text.
    days = {
        f"day_{n}": as_date.get_db_prep_value(period + timedelta(days=n - 1), connection) for n in range(1, dim + 1)
    }
    params = {
        **days,
        "after": after,
        "last": last,
        "period": as_date.get_db_prep_value(period, connection),
        "month_end": as_date.get_db_prep_value(month_end(period), connection),
        "days_in_month": dim,
        "label": f"Rent - {month_label(period)}",
        "of_days": f" of {dim} days)",
        "now": as_time.get_db_prep_value(now, connection),
    }
    calendar = ", ".join(f"(%({name})s, {n})" for n, name in enumerate(days, start=1))
    with connection.cursor() as cursor:
        cursor.execute(CHARGE_INSERT_SQL.format(calendar=calendar), params)
        return cursor.rowcount


def balances_move(*, period: date, after: int, last: int, newest: int, now: datetime) -> None:
    """Move the balance of each lease with ``after < id <= last`` by the rent charge of ``period``
    written at ``now`` with a ledger id above ``newest`` (the ones this batch inserted)."""
    as_date = LedgerEntry._meta.get_field("period")
    as_time = LedgerEntry._meta.get_field("created_at")
    params = {
        "newest": newest,
        "period": as_date.get_db_prep_value(period, connection),
        "now": as_time.get_db_prep_value(now, connection),
        "after": after,
        "last": last,
    }
    with connection.cursor() as cursor:
        cursor.execute(BALANCE_MOVE_SQL, params)


@transaction.atomic
def charges_batch_create(*, period: date, after: int, limit: int, now: datetime) -> BatchResult:
    """Charge the next ``limit`` billable leases with id > ``after``; one transaction.

    1. Find the batch's last lease id. 2. Note the newest ledger id. 3. Insert the charges.
    4. Move each balance by the charge found in the ledger above that id and written at
       ``now``: not by one an earlier run wrote (a retry, whose batches may fall differently),
       nor by one that a concurrent run at another ``now`` inserted first (ON CONFLICT skipped
       it here). Two runs at the same ``now`` at once are what the job platform's one active
       run per job prevents.
    """
    batch = (
        billable_leases(period)
        .filter(id__gt=after)
        .order_by("id")[:limit]
        .aggregate(last=Max("id"), leases=Count("id"), unpriced=Count("id", filter=Q(monthly_rent__lte=0)))
    )
    if not batch["leases"]:
        return BatchResult(last_lease_id=None, processed=0, created=0, already_present=0)
    newest = LedgerEntry.objects.aggregate(newest=Max("id"))["newest"] or 0
    created = charge_rows_insert(period=period, after=after, last=batch["last"], now=now)
    if created:
        balances_move(period=period, after=after, last=batch["last"], newest=newest, now=now)
    return BatchResult(
        last_lease_id=batch["last"],
        processed=batch["leases"],
        created=created,
        already_present=batch["leases"] - created - batch["unpriced"],
        errors=batch["unpriced"],
    )


def charges_preview(*, period: date) -> dict:
    """What a run would do, in one query (--dry-run)."""
    charged = Exists(rent_charges(period).filter(lease=OuterRef("pk")))
    counts = billable_leases(period).aggregate(
        leases=Count("id"),
        present=Count("id", filter=charged),
        errors=Count("id", filter=Q(monthly_rent__lte=0) & ~charged),
    )
    return {
        "period": period.isoformat(),
        "leases_processed": counts["leases"],
        "already_present": counts["present"],
        "charges_created": counts["leases"] - counts["present"] - counts["errors"],
        "errors": counts["errors"],
    }


def charges_generate(*, now: datetime, dry_run: bool = False, batch_size: int | None = None, progress=None) -> dict:
    """Charge every billable lease for the month of ``now``. Not atomic as a whole: each batch
    commits on its own, and a re-run skips what earlier batches wrote."""
    period = month_start(local_date(now))
    if dry_run:
        return charges_preview(period=period)
    size = resolve_batch_size(batch_size)
    totals = {"processed": 0, "created": 0, "already_present": 0, "errors": 0, "batches": 0}
    after = 0
    while True:
        result = charges_batch_create(period=period, after=after, limit=size, now=now)
        if result.done:
            break
        for key in ("processed", "created", "already_present", "errors"):
            totals[key] += getattr(result, key)
        totals["batches"] += 1
        if progress:
            progress(result.processed)
        after = result.last_lease_id
        if result.processed < size:
            break
    return {
        "period": period.isoformat(),
        "leases_processed": totals["processed"],
        "charges_created": totals["created"],
        "already_present": totals["already_present"],
        "errors": totals["errors"],
        "batches": totals["batches"],
    }
