"""The reminder and notice jobs: rent-reminders, overdue-notices, lease-expiration,
and autopay-reminders.

Each job picks what is still to send with an anti-join (NOT EXISTS a BillingNotice), walks it
in batches, and per batch, in one transaction, records the BillingNotice rows (the "once"
facts, guarded by unique constraints) and queues the e-mails through the notifications app
with the same dedupe keys. A crash rolls back both together; a concurrent run is stopped by
the constraints and the dedupe keys.

Tiered notices send the most urgent tier reached and never a lesser one after it: a charge
first seen 20 days overdue gets the 15-day notice, not the 1-, 5- and 15-day ones at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from core.batching import statistics_refresh, value_batches
from core.money import cents
from notifications.services import notifications_enqueue_many

from ..batching import batch_size as resolve_batch_size
from ..models import BillingNotice, Lease, LedgerEntry, Tenant
from ..periods import due_date, local_date, month_label, month_start, next_month
from .payments import open_charges

Kind = BillingNotice.Kind


def language_or_default(language: str) -> str:
    """The recipient's language, or the site's when they chose none: stored on the queued
    message, so a retry renders the language it was queued in."""
    return language or settings.LANGUAGE_CODE


CHARGE_FIELDS = (
    "amount",
    "outstanding",
    "due_date",
    "period",
    "description",
    "lease_id",
    "lease__tenant__name",
    "lease__tenant__email",
    "lease__tenant__language",
    "lease__unit__name",
    "lease__unit__property__name",
)


@dataclass
class Outgoing:
    notice: BillingNotice
    messages: list[dict]


@transaction.atomic
def notices_batch_send(*, outgoing: list[Outgoing]) -> int:
    """Record the facts and queue their messages together; returns messages newly queued."""
    BillingNotice.objects.bulk_create([item.notice for item in outgoing], ignore_conflicts=True)
    return notifications_enqueue_many(messages=[m for item in outgoing for m in item.messages])


def _send(
    candidates: QuerySet, fields: Iterable[str], build: Callable[[dict], Outgoing], *, size: int, totals: dict
) -> None:
    for rows in value_batches(candidates, *fields, size=size):
        outgoing = [build(row) for row in rows]
        totals["notices"] += len(outgoing)
        totals["messages_queued"] += notices_batch_send(outgoing=outgoing)
        statistics_refresh(BillingNotice)


def _run(jobs: list[tuple[QuerySet, tuple, Callable]], *, dry_run: bool, batch_size: int | None, **extra) -> dict:
    totals = {"notices": 0, "messages_queued": 0, **extra}
    if dry_run:
        # Tiers overlap (a charge 20 days overdue is a candidate for 1, 5 and 15) while a run
        # sends one notice per row: count the distinct rows of the union.
        first, *rest = [candidates.order_by().values("pk") for candidates, _, _ in jobs]
        totals["notices"] = first.union(*rest).count() if rest else first.count()
        return totals
    size = resolve_batch_size(batch_size)
    for candidates, fields, build in jobs:
        _send(candidates, fields, build, size=size, totals=totals)
    return totals


def _sent(kind: str, **match) -> Exists:
    return Exists(BillingNotice.objects.filter(kind=kind, **match))


def _charge_context(row: dict, today: date) -> dict:
    return {
        "tenant_name": row["lease__tenant__name"],
        "property": row["lease__unit__property__name"],
        "unit": row["lease__unit__name"],
        "description": row["description"],
        "amount": str(cents(row["amount"])),
        "outstanding": str(cents(row["outstanding"])),
        "due_date": row["due_date"].isoformat(),
        "period_label": month_label(row["period"]),
    }


# --- rent-reminders ---------------------------------------------------------------------


def rent_reminders_send(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> dict:
    """Tenants without autopay whose rent is due within N days (today included) and unpaid."""
    today = local_date(now)
    days = settings.BILLING_RENT_REMINDER_DAYS
    candidates = (
        open_charges()
        .filter(
            kind=LedgerEntry.Kind.CHARGE,
            category=LedgerEntry.Category.RENT,
            due_date__gte=today,
            due_date__lte=today + timedelta(days=days),
            lease__tenant__autopay_enrolled=False,
        )
        .exclude(_sent(Kind.RENT_REMINDER, charge=OuterRef("pk")))
    )

    def build(row: dict) -> Outgoing:
        key = f"rent-reminder:{row['pk']}"
        context = {**_charge_context(row, today), "days_until_due": (row["due_date"] - today).days}
        message = {
            "recipient": row["lease__tenant__email"],
            "template": "billing/rent_reminder",
            "context": context,
            "language": language_or_default(row["lease__tenant__language"]),
        }
        notice = BillingNotice(
            kind=Kind.RENT_REMINDER, charge_id=row["pk"], lease_id=row["lease_id"], dedupe_key=key, sent_on=today
        )
        return Outgoing(notice, [{**message, "dedupe_key": key}])

    return _run([(candidates, CHARGE_FIELDS, build)], dry_run=dry_run, batch_size=batch_size)


# --- overdue-notices --------------------------------------------------------------------


def overdue_notices_send(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> dict:
    """Unpaid charges 1/5/15/30 days past due: the highest tier reached, each tier once."""
    today = local_date(now)
    tiers = sorted(settings.BILLING_OVERDUE_TIERS, reverse=True)
    jobs = []
    by_tier = {}
    for tier in tiers:
        candidates = (
            open_charges()
            .filter(due_date__lte=today - timedelta(days=tier))
            .exclude(_sent(Kind.OVERDUE, charge=OuterRef("pk"), tier__gte=tier))
        )
        jobs.append((candidates, CHARGE_FIELDS, _overdue_builder(tier, today, by_tier)))
    result = _run(jobs, dry_run=dry_run, batch_size=batch_size)
    if not dry_run:
        result["by_tier"] = {str(t): by_tier.get(t, 0) for t in sorted(tiers)}
    return result


def _overdue_builder(tier: int, today: date, by_tier: dict) -> Callable[[dict], Outgoing]:
    def build(row: dict) -> Outgoing:
        by_tier[tier] = by_tier.get(tier, 0) + 1
        key = f"overdue:{row['pk']}:tier{tier}"
        context = {**_charge_context(row, today), "tier": tier, "days_overdue": (today - row["due_date"]).days}
        message = {
            "recipient": row["lease__tenant__email"],
            "template": "billing/overdue_notice",
            "context": context,
            "language": language_or_default(row["lease__tenant__language"]),
        }
        notice = BillingNotice(
            kind=Kind.OVERDUE, tier=tier, charge_id=row["pk"], lease_id=row["lease_id"], dedupe_key=key, sent_on=today
        )
        return Outgoing(notice, [{**message, "dedupe_key": key}])

    return build


# --- lease-expiration -------------------------------------------------------------------

LEASE_FIELDS = (
    "end_date",
    "start_date",
    "monthly_rent",
    "tenant_id",
    "tenant__name",
    "tenant__email",
    "tenant__language",
    "unit__name",
    "unit__property__name",
    "unit__property__owner__name",
    "unit__property__owner__email",
    "unit__property__owner__language",
)


def lease_expiry_alerts_send(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> dict:
    """Active leases ending within 90/60/30/14/7 days: the most urgent tier reached, each once,
    to the tenant and to the owner."""
    today = local_date(now)
    jobs = []
    for tier in sorted(settings.BILLING_LEASE_EXPIRY_TIERS):
        candidates = Lease.objects.filter(
            status=Lease.Status.ACTIVE, end_date__gte=today, end_date__lte=today + timedelta(days=tier)
        ).exclude(_sent(Kind.LEASE_EXPIRY, lease=OuterRef("pk"), tier__lte=tier))
        jobs.append((candidates, LEASE_FIELDS, _expiry_builder(tier, today)))
    return _run(jobs, dry_run=dry_run, batch_size=batch_size)


def _expiry_builder(tier: int, today: date) -> Callable[[dict], Outgoing]:
    def build(row: dict) -> Outgoing:
        key = f"lease-expiry:{row['pk']}:tier{tier}"
        context = {
            "tenant_name": row["tenant__name"],
            "owner_name": row["unit__property__owner__name"],
            "property": row["unit__property__name"],
            "unit": row["unit__name"],
            "end_date": row["end_date"].isoformat(),
            "days_left": (row["end_date"] - today).days,
            "tier": tier,
        }
        messages = [
            {
                "recipient": row["tenant__email"],
                "template": "billing/lease_expiry_tenant",
                "context": context,
                "language": language_or_default(row["tenant__language"]),
                "dedupe_key": f"{key}:tenant",
            },
            {
                "recipient": row["unit__property__owner__email"],
                "template": "billing/lease_expiry_owner",
                "context": context,
                "language": language_or_default(row["unit__property__owner__language"]),
                "dedupe_key": f"{key}:owner",
            },
        ]
        notice = BillingNotice(kind=Kind.LEASE_EXPIRY, tier=tier, lease_id=row["pk"], dedupe_key=key, sent_on=today)
        return Outgoing(notice, messages)

    return build


# --- autopay-reminders ------------------------------------------------------------------


def autopay_reminders_send(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> dict:
    """1. Autopay tenants, N days before the charge: what will be charged and when (once per
    lease and month). 2. Tenants without autopay: an enrollment reminder, once a month."""
    today = local_date(now)
    size = resolve_batch_size(batch_size)
    totals = {"precharge_notices": 0, "enrollment_reminders": 0, "messages_queued": 0}
    for rows in value_batches(_autopay_leases(today), *LEASE_FIELDS, "due_day", size=size):
        outgoing = _precharge_batch(rows, today)
        totals["precharge_notices"] += len(outgoing)
        if outgoing and not dry_run:
            totals["messages_queued"] += notices_batch_send(outgoing=outgoing)
            statistics_refresh(BillingNotice)
    enrollment = _enrollment_candidates(today)
    if dry_run:
        totals["enrollment_reminders"] = enrollment.count()
        return totals
    for rows in value_batches(enrollment, "name", "email", "language", size=size):
        outgoing = [_enrollment_outgoing(row, today) for row in rows]
        totals["enrollment_reminders"] += len(outgoing)
        totals["messages_queued"] += notices_batch_send(outgoing=outgoing)
        statistics_refresh(BillingNotice)
    return totals


def _current_leases(today: date) -> QuerySet:
    return Lease.objects.filter(Q(end_date__isnull=True) | Q(end_date__gte=today), status=Lease.Status.ACTIVE)


def _autopay_leases(today: date) -> QuerySet:
    return _current_leases(today).filter(tenant__autopay_enrolled=True)


def _precharge_batch(rows: list[dict], today: date) -> list[Outgoing]:
    """Due dates are computed per lease in Python (this month's, else next month's); what was
    already sent and the charge amounts come in one query each for the whole batch."""
    days = settings.BILLING_AUTOPAY_REMINDER_DAYS
    due = {}
    for row in rows:
        for period in (month_start(today), next_month(today)):
            day = max(due_date(period, row["due_day"]), row["start_date"])
            if today < day <= today + timedelta(days=days) and (row["end_date"] is None or day <= row["end_date"]):
                due[row["pk"]] = (period, day)
    if not due:
        return []
    periods = {period for period, _ in due.values()}
    sent = set(
        BillingNotice.objects.filter(kind=Kind.AUTOPAY_PRECHARGE, lease_id__in=due, period__in=periods).values_list(
            "lease_id", "period"
        )
    )
    charged = dict(
        (((lease_id, period), amount))
        for lease_id, period, amount in LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.CHARGE, category=LedgerEntry.Category.RENT, lease_id__in=due, period__in=periods
        ).values_list("lease_id", "period", "amount")
    )
    outgoing = []
    for row in rows:
        if row["pk"] not in due or (row["pk"], due[row["pk"]][0]) in sent:
            continue
        period, day = due[row["pk"]]
        amount = cents(charged.get((row["pk"], period), row["monthly_rent"]))
        key = f"autopay:{row['pk']}:{period:%Y-%m}"
        context = {
            "tenant_name": row["tenant__name"],
            "property": row["unit__property__name"],
            "unit": row["unit__name"],
            "amount": str(amount),
            "charge_date": day.isoformat(),
            "period_label": month_label(period),
        }
        message = {
            "recipient": row["tenant__email"],
            "template": "billing/autopay_precharge",
            "context": context,
            "language": language_or_default(row["tenant__language"]),
        }
        notice = BillingNotice(
            kind=Kind.AUTOPAY_PRECHARGE, lease_id=row["pk"], period=period, dedupe_key=key, sent_on=today
        )
        outgoing.append(Outgoing(notice, [{**message, "dedupe_key": key}]))
    return outgoing


def _enrollment_candidates(today: date) -> QuerySet:
    period = month_start(today)
    return (
        Tenant.objects.filter(autopay_enrolled=False)
        .filter(Exists(_current_leases(today).filter(tenant=OuterRef("pk"))))
        .exclude(_sent(Kind.AUTOPAY_ENROLLMENT, tenant=OuterRef("pk"), period=period))
    )


def _enrollment_outgoing(row: dict, today: date) -> Outgoing:
    period = month_start(today)
    key = f"autopay-enrollment:{row['pk']}:{period:%Y-%m}"
    message = {
        "recipient": row["email"],
        "template": "billing/autopay_enrollment",
        "context": {"tenant_name": row["name"], "period_label": month_label(period)},
        "language": language_or_default(row["language"]),
        "dedupe_key": key,
    }
    notice = BillingNotice(
        kind=Kind.AUTOPAY_ENROLLMENT, tenant_id=row["pk"], period=period, dedupe_key=key, sent_on=today
    )
    return Outgoing(notice, [message])
