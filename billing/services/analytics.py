"""generate-analytics: the day's snapshot of subscriptions, rent and occupancy."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Q, Sum

from ..models import DailySnapshot, Lease, LedgerEntry, Subscription, Unit
from ..money import ZERO, cents
from ..periods import day_bounds, local_date, month_start

Status = Subscription.Status


def snapshot_figures(*, day, now: datetime) -> dict:
    """Eight aggregate queries, whatever the size of the tables."""
    start, end = day_bounds(day)
    subs = Subscription.objects.aggregate(
        active=Count("id", filter=Q(status=Status.ACTIVE)),
        trial=Count("id", filter=Q(status=Status.TRIAL)),
        new=Count("id", filter=Q(started_at__gte=start, started_at__lt=end)),
        churned=Count("id", filter=Q(status=Status.EXPIRED, expired_at__gte=start, expired_at__lt=end)),
    )
    mrr = Subscription.objects.filter(status=Status.ACTIVE).aggregate(total=Sum("plan__monthly_price"))["total"]
    period = month_start(day)
    billed = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.CHARGE, category=LedgerEntry.Category.RENT, period=period, posted_on__lte=day
    ).aggregate(total=Sum("amount"))["total"]
    collected = LedgerEntry.objects.filter(
        kind=LedgerEntry.Kind.PAYMENT, category=LedgerEntry.Category.RENT, posted_on__gte=period, posted_on__lte=day
    ).aggregate(total=Sum("amount"))["total"]
    units = Unit.objects.count()
    occupied = (
        Lease.objects.filter(Q(end_date__isnull=True) | Q(end_date__gte=day), status__in=["active", "ended"])
        .filter(start_date__lte=day)
        .values("unit")
        .distinct()
        .count()
    )
    return {
        # Aggregates come back from SQLite without their two places: quantize here.
        "mrr": cents(mrr or ZERO),
        "active_subscriptions": subs["active"],
        "trial_subscriptions": subs["trial"],
        "new_subscriptions": subs["new"],
        "churned_subscriptions": subs["churned"],
        "rent_billed_mtd": cents(billed or ZERO),
        "rent_collected_mtd": cents(-(collected or ZERO)),
        "units_total": units,
        "units_occupied": occupied,
        "occupancy_percent": (Decimal(occupied * 100) / units).quantize(Decimal("0.01")) if units else ZERO,
    }


@transaction.atomic
def analytics_snapshot_create(*, now: datetime, dry_run: bool = False, force: bool = False) -> dict:
    """Yesterday's snapshot (the job runs at 01:00 for the day that just ended); once per day
    unless ``force`` recomputes it."""
    day = local_date(now) - timedelta(days=1)
    figures = snapshot_figures(day=day, now=now)
    summary = {"day": day.isoformat(), **{k: str(v) for k, v in figures.items()}}
    if dry_run:
        return {**summary, "created": 0}
    if force:
        _, created = DailySnapshot.objects.update_or_create(day=day, defaults={**figures, "created_at": now})
        return {**summary, "created": int(created), "updated": int(not created)}
    if DailySnapshot.objects.filter(day=day).exists():
        return {**summary, "created": 0, "already_present": 1}
    # A concurrent run may insert first; the unique day makes this one write nothing.
    DailySnapshot.objects.bulk_create([DailySnapshot(day=day, created_at=now, **figures)], ignore_conflicts=True)
    return {**summary, "created": 1}
