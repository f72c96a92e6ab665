"""generate-statements and generate-payouts: the previous month per owner, once each."""

from __future__ import annotations

from datetime import date, datetime

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from core.batching import statistics_refresh, value_batches
from core.money import ZERO
from notifications.services import webhook_event_send

from ..batching import batch_size as resolve_batch_size
from ..models import Owner, OwnerStatement, Payout, Property
from ..pdf import statement_pdf
from ..periods import local_date, month_label, previous_month
from ..selectors import OwnerMonth, owner_months
from .statement_emails import statements_deliver

FIGURES = (
    "opening_balance",
    "rent_billed",
    "rent_collected",
    "other_income",
    "expenses",
    "management_fee",
    "net",
    "payouts",
    "closing_balance",
)


def owners_with_properties() -> QuerySet:
    return Owner.objects.filter(Exists(Property.objects.filter(owner=OuterRef("pk"))))


# --- statements -----------------------------------------------------------------------


@transaction.atomic
def statements_batch_create(*, months: list[OwnerMonth], now: datetime, force: bool) -> int:
    rows = [
        OwnerStatement(owner_id=m.owner_id, period=m.period, generated_at=now, **{f: getattr(m, f) for f in FIGURES})
        for m in months
    ]
    if not force:
        OwnerStatement.objects.bulk_create(rows, ignore_conflicts=True)
        return len(rows)
    # --force: new figures for every owner, and the PDF cleared so it is rendered again.
    OwnerStatement.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["owner", "period"],
        update_fields=[*FIGURES, "generated_at", "pdf"],
    )
    return len(rows)


def statement_file_name(statement: OwnerStatement) -> str:
    return f"{statement.period:%Y/%m}/statement-{statement.period:%Y-%m}-owner-{statement.owner_id}.pdf"


def statements_render(*, period: date, size: int) -> int:
    """Render every statement of ``period`` still without a PDF; batch by batch, the files are
    written first and the rows point at them in one transaction (a crash in between leaves
    rows without a PDF, which the next run renders)."""
    rendered = 0
    pending = OwnerStatement.objects.filter(period=period, pdf="")
    for rows in value_batches(pending, "owner_id", size=size):
        statements = list(OwnerStatement.objects.filter(pk__in=[r["pk"] for r in rows]).order_by("pk"))
        months = owner_months(owner_ids=[s.owner_id for s in statements], period=period)
        storage = OwnerStatement._meta.get_field("pdf").storage
        for statement in statements:
            name = statement_file_name(statement)
            content = statement_pdf(months[statement.owner_id], statement_number=f"{period:%Y%m}-{statement.owner_id}")
            if storage.exists(name):
                storage.delete(name)
            statement.pdf.name = storage.save(name, _bytes_file(content))
        _statements_attach(statements=statements, months=months)
        rendered += len(statements)
    return rendered


@transaction.atomic
def _statements_attach(*, statements: list[OwnerStatement], months: dict[int, OwnerMonth]) -> None:
    OwnerStatement.objects.bulk_update(statements, ["pdf"])
    owners = {owner_id: (m.name, m.email) for owner_id, m in months.items()}
    statements_deliver(statements=statements, owners=owners, now=timezone.now())


def _bytes_file(content: bytes):
    from django.core.files.base import ContentFile

    return ContentFile(content)


def statements_generate(
    *, now: datetime, dry_run: bool = False, force: bool = False, batch_size: int | None = None
) -> dict:
    """The previous month's statement for each owner with properties, then its PDF."""
    period = previous_month(local_date(now))
    owners = owners_with_properties()
    if not force:
        owners = owners.exclude(Exists(OwnerStatement.objects.filter(owner=OuterRef("pk"), period=period)))
    if dry_run:
        return {"period": period.isoformat(), "statements_created": owners.count(), "pdfs_rendered": 0}
    size = resolve_batch_size(batch_size)
    created = 0
    for rows in value_batches(owners, size=size):
        months = owner_months(owner_ids=[r["pk"] for r in rows], period=period)
        created += statements_batch_create(months=list(months.values()), now=now, force=force)
        statistics_refresh(OwnerStatement)
    rendered = statements_render(period=period, size=size)
    key = "statements_regenerated" if force else "statements_created"
    return {"period": period.isoformat(), key: created, "pdfs_rendered": rendered}


# --- payouts --------------------------------------------------------------------------


def payout_for(month: OwnerMonth, *, now: datetime) -> Payout:
    amount = month.net
    payout = Payout(
        owner_id=month.owner_id,
        period=month.period,
        rent_collected=month.rent_collected,
        other_income=month.other_income,
        expenses=month.expenses,
        management_fee=month.management_fee,
        amount=amount,
        status=Payout.Status.PENDING if amount > 0 else Payout.Status.NOT_PAYABLE,
        created_at=now,
    )
    if amount <= 0:
        payout.reason = _not_payable_reason(month)
    return payout


def _not_payable_reason(month: OwnerMonth) -> str:
    collected = month.rent_collected + month.other_income
    label = month_label(month.period)
    if collected == 0 and month.expenses == 0:
        return f"Nothing collected and no expenses in {label}."
    return (
        f"Expenses ({month.expenses}) and management fee ({month.management_fee}) "
        f"are not less than collections ({collected}) in {label}: net {month.net}."
    )


@transaction.atomic
def payouts_batch_create(*, months: list[OwnerMonth], now: datetime) -> list[Payout]:
    payouts = [payout_for(m, now=now) for m in months]
    Payout.objects.bulk_create(payouts, ignore_conflicts=True)
    return payouts


def payouts_generate(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> dict:
    """The previous month's payout per owner, once per owner and month."""
    period = previous_month(local_date(now))
    owners = owners_with_properties().exclude(Exists(Payout.objects.filter(owner=OuterRef("pk"), period=period)))
    summary = {"period": period.isoformat(), "payouts_created": 0, "not_payable": 0, "total": ZERO}
    for rows in value_batches(owners, size=resolve_batch_size(batch_size)):
        months = list(owner_months(owner_ids=[r["pk"] for r in rows], period=period).values())
        if dry_run:
            payouts = [payout_for(m, now=now) for m in months]
        else:
            payouts = payouts_batch_create(months=months, now=now)
            statistics_refresh(Payout)
        for payout in payouts:
            if payout.status == Payout.Status.PENDING:
                summary["payouts_created"] += 1
                summary["total"] += payout.amount
            else:
                summary["not_payable"] += 1
    if not dry_run and (summary["payouts_created"] or summary["not_payable"]):
        # One event per run, not per owner: subscribers fetch the detail they need.
        webhook_event_send(
            event="billing.payouts_generated",
            payload={**summary, "total": str(summary["total"])},
        )
    return {**summary, "total": str(summary["total"])}
