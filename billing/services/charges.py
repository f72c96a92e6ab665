"""generate-charges: one rent CHARGE per lease and month, prorated by day.

A lease is billed for a month when it was signed (active or since ended) and its dates
overlap the month: ``start_date <= month end`` and ``end_date`` empty or ``>= month start``.
Proration: ``round(monthly_rent * days_in_lease_this_month / days_in_month, 2)`` half up.
The due date is the lease's due day in the month (clamped to its last day), or the lease's
first day if that is later.

Each batch is one transaction, the same on either database: it locks its leases in id order,
one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING RETURNING`` writes its charges and reports
the rows it inserted, and one ``UPDATE`` moves each balance by exactly those rows. Two runs at
once, whatever their batch sizes, move every balance once (docs/billing.md, "Concurrency").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

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
# order of its index, as SQLite matches it as written. RETURNING (SQLite 3.35+) names the rows
# this statement inserted and no other: not a concurrent run's, nor an earlier run's.
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
ORDER BY priced.id
ON CONFLICT (lease_id, period) WHERE category = 'rent' AND kind = 'charge' DO NOTHING
RETURNING id
"""


# Each lease's balance moved by the ledger rows a batch inserted (their ids, from RETURNING or
# bulk_create), summed per lease in integer cents as one join. UPDATE ... FROM is SQL both
# databases accept (SQLite since 3.33); the ORM's form of it, a correlated subquery per lease,
# took longer than the INSERT itself.
MOVE_SLICE = 10_000
BALANCE_MOVE_SQL = """
UPDATE "billing_lease"
   SET balance = billing_lease.balance + moved.cents / 100.0
  FROM (SELECT lease_id, SUM(CAST(ROUND(amount * 100) AS BIGINT)) AS cents FROM billing_ledgerentry
         WHERE id IN ({ids}) GROUP BY lease_id) AS moved
 WHERE billing_lease.id = moved.lease_id
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


def charge_rows_insert(*, period: date, after: int, last: int, now: datetime) -> list[int]:
    """Insert the missing rent charges of the billable leases with ``after < id <= last``;
    returns the ids of the ledger rows inserted."""
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
        return [row[0] for row in cursor.fetchall()]


def balances_move(*, entry_ids: list[int]) -> None:
    """Move each lease balance by the ledger rows ``entry_ids`` (the ones a batch inserted)."""
    with connection.cursor() as cursor:
        # In slices: SQLite takes at most 32,766 parameters per statement, and --batch-size is free.
        for start in range(0, len(entry_ids), MOVE_SLICE):
            ids = entry_ids[start : start + MOVE_SLICE]
            cursor.execute(BALANCE_MOVE_SQL.format(ids=", ".join(["%s"] * len(ids))), ids)


def leases_lock(leases: QuerySet, *, limit: int) -> list[tuple[int, Decimal]]:
    """Lock the first ``limit`` of ``leases`` in id order for the rest of the transaction;
    returns their (id, monthly rent).

    The money jobs lock the leases they will move before they write, always in id order, so two
    runs wait for each other instead of deadlocking; the second then reads what the first
    committed. FOR NO KEY UPDATE leaves inserts that reference the lease
    free; SQLite, which has one writer at a time, ignores the clause."""
    return list(leases.order_by("id").select_for_update(no_key=True).values_list("id", "monthly_rent")[:limit])


@transaction.atomic
def charges_batch_create(*, period: date, after: int, limit: int, now: datetime) -> BatchResult:
    """Charge the next ``limit`` billable leases with id > ``after``; one transaction.

    1. Lock the batch's leases (id order). 2. Insert the charges missing, returning their ids.
    3. Move each balance by exactly those rows. A concurrent run that charged a lease first
    made step 1 wait; step 2 then skips that lease (ON CONFLICT), so neither run moves a
    balance by a charge the other inserted, whatever the batch sizes or start times.
    """
    leases = leases_lock(billable_leases(period).filter(id__gt=after), limit=limit)
    if not leases:
        return BatchResult(last_lease_id=None, processed=0, created=0, already_present=0)
    last = leases[-1][0]
    unpriced = sum(1 for _, rent in leases if rent <= 0)
    created = charge_rows_insert(period=period, after=after, last=last, now=now)
    balances_move(entry_ids=created)
    return BatchResult(
        last_lease_id=last,
        processed=len(leases),
        created=len(created),
        already_present=len(leases) - len(created) - unpriced,
        errors=unpriced,
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
