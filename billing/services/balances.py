"""reconciliation: recompute every lease balance from its ledger, fix drift, record each fix.

``Lease.balance`` is a cache of ``SUM(ledger.amount)``. Each batch compares the two for a range
of leases and, where they differ, appends a BalanceCorrection (before, after, when) and moves
the balance by the difference. Moving by the difference rather than overwriting keeps a
payment that commits meanwhile: PostgreSQL re-reads the row it waited for and adds the
difference to the new balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import DecimalField, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from core.money import ZERO, cents

from ..batching import batch_size as resolve_batch_size
from ..models import BalanceCorrection, Lease, LedgerEntry
from .charges import MOVE_SLICE, leases_lock

REPORTED_CORRECTIONS = 20  # corrections listed in the job summary; all are in the table

# SQL that SQLite and PostgreSQL both accept. Both sides are compared in integer cents: SQLite
# sums decimals as floating point, whose last digits would otherwise show as drift.
CORRECTION_INSERT_SQL = """
INSERT INTO billing_balancecorrection (lease_id, before, after, difference, corrected_at)
SELECT sums.id, sums.before_cents / 100.0, sums.after_cents / 100.0,
       sums.after_cents / 100.0 - sums.before_cents / 100.0, %(now)s
FROM (
    SELECT l.id, CAST(ROUND(l.balance * 100) AS BIGINT) AS before_cents,
           CAST(ROUND(COALESCE((SELECT SUM(e.amount) FROM billing_ledgerentry e WHERE e.lease_id = l.id), 0) * 100)
                AS BIGINT) AS after_cents
    FROM billing_lease l
    WHERE l.id > %(after)s AND l.id <= %(last)s
) sums
WHERE sums.before_cents <> sums.after_cents
ORDER BY sums.id
RETURNING id
"""

# Each balance moved by the correction this batch recorded for it (ids from RETURNING).
CORRECTION_MOVE_SQL = """
UPDATE "billing_lease"
   SET balance = billing_lease.balance + fix.difference
  FROM (SELECT lease_id, difference FROM billing_balancecorrection WHERE id IN ({ids})) AS fix
 WHERE billing_lease.id = fix.lease_id
"""


@dataclass
class BalanceBatch:
    last_lease_id: int | None
    checked: int
    corrections: list[tuple[int, Decimal, Decimal]] = field(default_factory=list)


def ledger_sum() -> Subquery:
    total = LedgerEntry.objects.filter(lease=OuterRef("pk")).order_by().values("lease").annotate(total=Sum("amount"))
    return Coalesce(
        Subquery(total.values("total")), Value(ZERO), output_field=DecimalField(max_digits=12, decimal_places=2)
    )


def drifted_leases() -> QuerySet:
    return Lease.objects.annotate(ledger_total=ledger_sum()).exclude(balance=F("ledger_total"))


@transaction.atomic
def balances_batch_reconcile(*, after: int, limit: int, now: datetime) -> BalanceBatch:
    """Check the next ``limit`` leases with id > ``after``; one transaction.

    1. Lock the batch's leases in id order: a concurrent reconciliation (or charge run) waits
    here and then compares against what this one committed, so a drift is fixed once. 2. Record
    a correction for each lease that drifted, returning their ids. 3. Move those balances by
    exactly the corrections recorded here.
    """
    leases = leases_lock(Lease.objects.filter(id__gt=after), limit=limit)
    if not leases:
        return BalanceBatch(None, 0)
    last = leases[-1][0]
    corrected_at = BalanceCorrection._meta.get_field("corrected_at").get_db_prep_value(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(CORRECTION_INSERT_SQL, {"after": after, "last": last, "now": corrected_at})
        ids = [row[0] for row in cursor.fetchall()]
        for start in range(0, len(ids), MOVE_SLICE):  # SQLite's limit on parameters per statement
            part = ids[start : start + MOVE_SLICE]
            cursor.execute(CORRECTION_MOVE_SQL.format(ids=", ".join(["%s"] * len(part))), part)
    if not ids:
        return BalanceBatch(last, len(leases))
    # Ours: the leases are locked by this transaction, so no other run corrected them meanwhile.
    fixed = BalanceCorrection.objects.filter(id__gte=min(ids), id__lte=max(ids), lease_id__gt=after, lease_id__lte=last)
    return BalanceBatch(last, len(leases), list(fixed.order_by("lease_id").values_list("lease_id", "before", "after")))


def balances_reconcile(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> dict:
    """Check every lease, batch by batch (each batch its own transaction)."""
    if dry_run:
        drifted = drifted_leases().order_by("id").values_list("id", "balance", "ledger_total")
        sample = list(drifted[:REPORTED_CORRECTIONS])
        return {
            "leases_checked": Lease.objects.count(),
            "drifted": drifted.count(),
            "corrected": 0,
            "corrections": [_describe(*row) for row in sample],
        }
    size = resolve_batch_size(batch_size)
    checked, corrected, net_drift, reported, after = 0, 0, ZERO, [], 0
    while True:
        batch = balances_batch_reconcile(after=after, limit=size, now=now)
        if batch.last_lease_id is None:
            break
        checked += batch.checked
        corrected += len(batch.corrections)
        net_drift += sum((a - b for _, b, a in batch.corrections), ZERO)
        reported.extend(_describe(*c) for c in batch.corrections[: REPORTED_CORRECTIONS - len(reported)])
        after = batch.last_lease_id
        if batch.checked < size:
            break
    return {
        "leases_checked": checked,
        "drifted": corrected,
        "corrected": corrected,
        "net_correction": str(cents(net_drift)),
        "corrections": reported,
    }


def _describe(lease_id: int, before: Decimal, after: Decimal) -> dict:
    return {"lease": lease_id, "before": str(cents(before)), "after": str(cents(after))}
