"""reconciliation: recompute every lease balance from its ledger, fix drift, record each fix.

``Lease.balance`` is a cache of ``SUM(ledger.amount)``. Each batch compares the two for a range
of leases and, where they differ, moves the balance by the difference and appends a
BalanceCorrection (before, after, when). Moving by the difference rather than overwriting
keeps a payment that commits meanwhile: PostgreSQL re-reads the row it waited for and adds
the difference to the new balance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import DecimalField, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from ..batching import batch_size as resolve_batch_size
from ..batching import uses_postgres
from ..models import BalanceCorrection, Lease, LedgerEntry
from ..money import ZERO, cents

REPORTED_CORRECTIONS = 20  # corrections listed in the job summary; all are in the table

BALANCE_BATCH_SQL = """
WITH batch AS (
    SELECT l.id, l.balance FROM billing_lease l WHERE l.id > %(after)s ORDER BY l.id LIMIT %(limit)s
), sums AS (
    SELECT b.id, b.balance AS before,
           COALESCE((SELECT SUM(e.amount) FROM billing_ledgerentry e WHERE e.lease_id = b.id), 0) AS after
    FROM batch b
), drift AS (
    SELECT id, before, after FROM sums WHERE before <> after
), fixed AS (
    UPDATE billing_lease l SET balance = l.balance + (d.after - d.before) FROM drift d WHERE l.id = d.id
    RETURNING l.id
), logged AS (
    INSERT INTO billing_balancecorrection (lease_id, before, after, difference, corrected_at)
    SELECT d.id, d.before, d.after, d.after - d.before, %(now)s FROM drift d JOIN fixed f ON f.id = d.id
    RETURNING lease_id, before, after
)
SELECT (SELECT MAX(id) FROM batch), (SELECT COUNT(*) FROM batch), lease_id, before, after FROM logged
UNION ALL
SELECT (SELECT MAX(id) FROM batch), (SELECT COUNT(*) FROM batch), NULL, NULL, NULL
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
def balances_batch_reconcile(*, after: int, limit: int, now: datetime, strategy: str) -> BalanceBatch:
    if strategy == "sql":
        with connection.cursor() as cursor:
            cursor.execute(BALANCE_BATCH_SQL, {"after": after, "limit": limit, "now": now})
            rows = cursor.fetchall()
        last, checked = rows[0][0], rows[0][1]
        return BalanceBatch(last, checked, [(r[2], r[3], r[4]) for r in rows if r[2] is not None])
    leases = list(Lease.objects.filter(id__gt=after).order_by("id").annotate(ledger_total=ledger_sum())[:limit])
    if not leases:
        return BalanceBatch(None, 0)
    drift = [lease for lease in leases if lease.balance != lease.ledger_total]
    corrections = [(lease.pk, lease.balance, lease.ledger_total) for lease in drift]
    BalanceCorrection.objects.bulk_create(
        BalanceCorrection(lease_id=pk, before=before, after=after_, difference=after_ - before, corrected_at=now)
        for pk, before, after_ in corrections
    )
    for lease in drift:
        lease.balance = lease.ledger_total
    # Safe to overwrite here: the ORM path serves SQLite, whose IMMEDIATE transactions hold
    # the write lock from the first read, so no payment can land between read and write.
    Lease.objects.bulk_update(drift, ["balance"])
    return BalanceBatch(leases[-1].pk, len(leases), corrections)


def balances_reconcile(
    *, now: datetime, dry_run: bool = False, batch_size: int | None = None, strategy: str | None = None
) -> dict:
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
    strategy = strategy or ("sql" if uses_postgres() else "orm")
    checked, corrected, net_drift, reported, after = 0, 0, ZERO, [], 0
    while True:
        batch = balances_batch_reconcile(after=after, limit=size, now=now, strategy=strategy)
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
