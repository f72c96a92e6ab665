"""subscription-analytics: the day's MRR and subscription counts.

generate-analytics (billing) keeps the rent and occupancy figures: billing may not read the
accounts app, and accounts may not read leases, so each app snapshots its own side.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from core.money import ZERO, cents

from ..models import Subscription, SubscriptionSnapshot

Status = Subscription.Status


def subscription_figures(*, day) -> dict:
    """Two aggregate queries, whatever the size of the table."""
    start = timezone.make_aware(datetime(day.year, day.month, day.day))
    end = start + timedelta(days=1)
    subs = Subscription.objects.aggregate(
        active=Count("id", filter=Q(status=Status.ACTIVE)),
        trial=Count("id", filter=Q(status=Status.TRIAL)),
        new=Count("id", filter=Q(started_at__gte=start, started_at__lt=end)),
        churned=Count("id", filter=Q(status=Status.EXPIRED, expired_at__gte=start, expired_at__lt=end)),
    )
    mrr = Subscription.objects.filter(status=Status.ACTIVE).aggregate(total=Sum("plan__monthly_price"))["total"]
    return {
        # Aggregates come back from SQLite without their two places: quantize here.
        "mrr": cents(mrr or ZERO),
        "active_subscriptions": subs["active"],
        "trial_subscriptions": subs["trial"],
        "new_subscriptions": subs["new"],
        "churned_subscriptions": subs["churned"],
    }


@transaction.atomic
def subscription_snapshot_create(*, now: datetime, dry_run: bool = False, force: bool = False) -> dict:
    """Yesterday's snapshot (the job runs at 01:00 for the day that just ended); once per day
    unless ``force`` recomputes it."""
    day = timezone.localtime(now).date() - timedelta(days=1)
    figures = subscription_figures(day=day)
    summary = {"day": day.isoformat(), **{k: str(v) for k, v in figures.items()}}
    if dry_run:
        return {**summary, "created": 0}
    if force:
        _, created = SubscriptionSnapshot.objects.update_or_create(day=day, defaults={**figures, "created_at": now})
        return {**summary, "created": int(created), "updated": int(not created)}
    if SubscriptionSnapshot.objects.filter(day=day).exists():
        return {**summary, "created": 0, "already_present": 1}
    # A concurrent run may insert first; the unique day makes this one write nothing.
    SubscriptionSnapshot.objects.bulk_create(
        [SubscriptionSnapshot(day=day, created_at=now, **figures)], ignore_conflicts=True
    )
    return {**summary, "created": 1}
