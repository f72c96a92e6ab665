"""trial-reminders: trials ending within 7 days and within 1 day, each reminder once.

Picks what is still to send with an anti-join (NOT EXISTS a SubscriptionNotice), walks it in
batches, and per batch, in one transaction, records the notices (the "once" facts, guarded by
a unique constraint) and queues the e-mails with the same dedupe keys. A crash rolls back both
together; a concurrent run is stopped by the constraint and the dedupe keys. The most urgent
tier reached is sent, never a lesser one after it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from core.batching import value_batches
from core.money import cents
from notifications.services import notifications_enqueue_many

from ..batching import batch_size as resolve_batch_size
from ..languages import messages_localized
from ..links import site_link
from ..models import Subscription, SubscriptionNotice

FIELDS = ("trial_ends_at", "account_id", "account__name", "account__email", "plan__name", "plan__monthly_price")


def trial_candidates(*, tier: int, now: datetime):
    sent = SubscriptionNotice.objects.filter(
        subscription=OuterRef("pk"), kind=SubscriptionNotice.Kind.TRIAL_REMINDER, tier__lte=tier
    )
    return Subscription.objects.filter(
        status=Subscription.Status.TRIAL, trial_ends_at__gt=now, trial_ends_at__lte=now + timedelta(days=tier)
    ).exclude(Exists(sent))


def trial_reminders_send(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> dict:
    tiers = sorted(settings.ACCOUNTS_TRIAL_REMINDER_TIERS)
    totals = {"notices": 0, "messages_queued": 0}
    if dry_run:
        first, *rest = [trial_candidates(tier=t, now=now).order_by().values("pk") for t in tiers]
        totals["notices"] = first.union(*rest).count() if rest else first.count()
        return totals
    size = resolve_batch_size(batch_size)
    for tier in tiers:
        for rows in value_batches(trial_candidates(tier=tier, now=now), *FIELDS, size=size):
            totals["notices"] += len(rows)
            totals["messages_queued"] += _batch_send(rows, tier=tier, now=now)
    return totals


@transaction.atomic
def _batch_send(rows: list[dict], *, tier: int, now: datetime) -> int:
    today = timezone.localtime(now).date()
    notices, messages = [], []
    for row in rows:
        key = f"trial-reminder:{row['pk']}:tier{tier}"
        notices.append(SubscriptionNotice(subscription_id=row["pk"], tier=tier, dedupe_key=key, sent_on=today))
        message = {
            "recipient": row["account__email"],
            "template": "accounts/trial_reminder",
            "context": _context(row, tier=tier, now=now),
            "dedupe_key": key,
        }
        messages.append((row["account_id"], message))
    SubscriptionNotice.objects.bulk_create(notices, ignore_conflicts=True)
    return notifications_enqueue_many(messages=messages_localized(messages))


def _context(row: dict, *, tier: int, now: datetime) -> dict:
    return {
        "account_name": row["account__name"],
        "plan": row["plan__name"],
        "price": str(cents(row["plan__monthly_price"])),
        "trial_ends_at": row["trial_ends_at"].isoformat(),
        "days_left": max((row["trial_ends_at"] - now).days, 0),
        "tier": tier,
        "subscribe_url": site_link(settings.ACCOUNTS_SUBSCRIPTION_PATH, account_id=row["account_id"]),
    }
