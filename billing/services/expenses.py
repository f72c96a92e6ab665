"""recurring-expenses: copy each active template into the month once; a tenant-billable copy
also becomes a tenant invoice and a ledger charge on the lease."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from core.batching import statistics_refresh, value_batches

from ..batching import batch_size as resolve_batch_size
from ..models import Expense, Lease, LedgerEntry, RecurringExpense, TenantInvoice
from ..periods import due_date, local_date, month_end, month_label, month_start
from .charges import balances_move, leases_lock

INVOICE_DUE_DAYS = 14  # a tenant pays a passed-on expense within two weeks of it


def templates_due(period: date) -> QuerySet:
    return (
        RecurringExpense.objects.filter(Q(ends_on__isnull=True) | Q(ends_on__gte=period), active=True)
        .filter(starts_on__lte=month_end(period))
        .exclude(Exists(Expense.objects.filter(template=OuterRef("pk"), period=period)))
    )


@transaction.atomic
def expenses_batch_copy(*, templates: list[dict], period: date, now: datetime) -> dict:
    """0. lock the batch's templates (id order), so a concurrent run waits here and then reads
    what this one committed; 1. the month's expenses (ignore_conflicts: a copy already there
    stays); 2. an invoice for each billable copy that has none; 3. a ledger charge for each
    invoice that has none, and the lease balances moved by exactly the charges inserted here."""
    list(
        RecurringExpense.objects.filter(pk__in=[t["pk"] for t in templates])
        .order_by("pk")
        .select_for_update(no_key=True)
        .values_list("pk", flat=True)
    )
    Expense.objects.bulk_create(
        [
            Expense(
                property_id=t["property_id"],
                template_id=t["pk"],
                description=t["description"],
                amount=t["amount"],
                period=period,
                incurred_on=due_date(period, t["day_of_month"]),
                tenant_billable=t["tenant_billable"],
            )
            for t in templates
        ],
        ignore_conflicts=True,
    )
    lease_of = {t["pk"]: t["lease_id"] for t in templates if t["tenant_billable"]}
    billable = Expense.objects.filter(template_id__in=lease_of, period=period, invoice__isnull=True).order_by("pk")
    TenantInvoice.objects.bulk_create(
        [
            TenantInvoice(
                lease_id=lease_of[e.template_id],
                expense=e,
                description=f"{e.description} - {month_label(period)}",
                amount=e.amount,
                issued_on=e.incurred_on,
                due_date=e.incurred_on + timedelta(days=INVOICE_DUE_DAYS),
            )
            for e in billable
        ],
        ignore_conflicts=True,
    )
    invoices = list(
        TenantInvoice.objects.filter(expense__template_id__in=lease_of, expense__period=period)
        .exclude(Exists(LedgerEntry.objects.filter(invoice=OuterRef("pk"), kind=LedgerEntry.Kind.CHARGE)))
        .order_by("pk")
    )
    if invoices:  # the leases too, in id order: two runs moving one lease's balance never deadlock
        leases_lock(Lease.objects.filter(pk__in={i.lease_id for i in invoices}), limit=len(invoices))
    # No ignore_conflicts: the template locks make these rows ours alone, and a plain insert
    # returns their primary keys, so the balances move by what this batch wrote and no more.
    charges = LedgerEntry.objects.bulk_create(
        [
            LedgerEntry(
                lease_id=i.lease_id,
                kind=LedgerEntry.Kind.CHARGE,
                category=LedgerEntry.Category.EXPENSE,
                description=i.description,
                amount=i.amount,
                period=period,
                due_date=i.due_date,
                posted_on=i.issued_on,
                invoice=i,
                created_at=now,
            )
            for i in invoices
        ]
    )
    balances_move(entry_ids=[charge.pk for charge in charges])
    return {"expenses": len(templates), "invoices": len(invoices)}


def expenses_copy(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> dict:
    period = month_start(local_date(now))
    candidates = templates_due(period)
    if dry_run:
        return {
            "period": period.isoformat(),
            "expenses_created": candidates.count(),
            "invoices_created": candidates.filter(tenant_billable=True).count(),
        }
    created = invoiced = 0
    fields = ("property_id", "description", "amount", "day_of_month", "tenant_billable", "lease_id")
    for templates in value_batches(candidates, *fields, size=resolve_batch_size(batch_size)):
        result = expenses_batch_copy(templates=templates, period=period, now=now)
        statistics_refresh(Expense)
        created += result["expenses"]
        invoiced += result["invoices"]
    return {"period": period.isoformat(), "expenses_created": created, "invoices_created": invoiced}
