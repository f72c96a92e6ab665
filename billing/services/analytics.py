"""generate-analytics: the day's snapshot of rent and occupancy (subscriptions: accounts' own job)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum

from core.money import ZERO, cents

from ..models import DailySnapshot, Lease, LedgerEntry, Unit
from ..periods import local_date, month_start


def snapshot_figures(*, day, now: datetime) -> dict:
    """Four aggregate queries, whatever the size of the tables."""
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
