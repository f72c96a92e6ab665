"""Recording a tenant's payment: settle open charges oldest first, move the balance."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db import transaction
from django.db.models import DecimalField, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from core.money import ZERO, cents

from ..models import Lease, LedgerEntry, Payment
from ..periods import month_start

Kind = LedgerEntry.Kind


def settled_amount() -> Coalesce:
    """Payments and credits applied to the charge in the outer query (a negative number)."""
    applied = (
        LedgerEntry.objects.filter(applies_to=OuterRef("pk")).order_by().values("applies_to").annotate(s=Sum("amount"))
    )
    return Coalesce(
        Subquery(applied.values("s")), Value(ZERO), output_field=DecimalField(max_digits=12, decimal_places=2)
    )


def open_charges() -> QuerySet:
    """Charges and fees with something left to pay, annotated with ``outstanding``."""
    return (
        LedgerEntry.objects.filter(kind__in=[Kind.CHARGE, Kind.FEE])
        .annotate(outstanding=F("amount") + settled_amount())
        .filter(outstanding__gt=0)
    )


@transaction.atomic
def payment_record(
    *,
    lease: Lease,
    amount: Decimal,
    received_on: date,
    method: str = Payment.Method.CARD,
    processor_reference: str | None = None,
) -> Payment:
    """1. Record the payment. 2. Apply it to the lease's open charges, oldest due first, one
    ledger entry per charge settled. 3. Anything left is an unapplied credit. 4. Move the balance.
    """
    amount = cents(amount)
    if amount <= 0:
        raise ValueError("A payment must be positive.")
    Lease.objects.select_for_update().filter(pk=lease.pk).first()  # one payment per lease at a time
    payment = Payment.objects.create(
        lease=lease, amount=amount, received_on=received_on, method=method, processor_reference=processor_reference
    )
    left = amount
    entries = []
    for charge in open_charges().filter(lease=lease).order_by("due_date", "id"):
        if left <= 0:
            break
        share = min(left, charge.outstanding)
        entries.append(_payment_entry(payment, share, received_on, applies_to=charge, category=charge.category))
        left -= share
    if left > 0:
        entries.append(_payment_entry(payment, left, received_on, applies_to=None, category=LedgerEntry.Category.RENT))
    LedgerEntry.objects.bulk_create(entries)
    Lease.objects.filter(pk=lease.pk).update(balance=F("balance") - amount)
    return payment


def _payment_entry(payment: Payment, share: Decimal, day: date, *, applies_to, category: str) -> LedgerEntry:
    label = applies_to.description if applies_to is not None else "unapplied credit"
    return LedgerEntry(
        lease_id=payment.lease_id,
        kind=Kind.PAYMENT,
        category=category,
        description=f"Payment - {label}"[:200],
        amount=-share,
        period=month_start(day),
        posted_on=day,
        applies_to=applies_to,
        payment=payment,
    )
