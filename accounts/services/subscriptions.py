"""expire-subscriptions: ended trials and ended paid periods become expired, in bulk."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import groupby

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from notifications.services import notifications_enqueue_many

from ..links import site_link
from ..models import Catalog, Subscription

Status = Subscription.Status
LIVE = [Status.TRIAL, Status.ACTIVE, Status.CANCELLED]


def trials_ended(now: datetime) -> QuerySet:
    return Subscription.objects.filter(status=Status.TRIAL, trial_ends_at__lte=now)


def periods_ended(now: datetime) -> QuerySet:
    return Subscription.objects.filter(status__in=[Status.ACTIVE, Status.CANCELLED], current_period_end__lte=now)


@transaction.atomic
def subscriptions_expire(*, now: datetime, dry_run: bool = False) -> dict:
    """One transaction:
    1. trials past their end, then paid periods past their end: one UPDATE each, stamped
       ``expired_at = now`` (that stamp names this run's expiries below);
    2. catalogs that needed a plan their account just lost (and holds no other live
       subscription to) are unpublished in one UPDATE;
    3. one expiry notice per account is queued, streamed from the database.
    """
    if dry_run:
        return {
            "trials_expired": trials_ended(now).count(),
            "periods_expired": periods_ended(now).count(),
            "catalogs_unpublished": 0,
            "notices_queued": 0,
        }
    trials = trials_ended(now).update(status=Status.EXPIRED, expired_at=now)
    periods = periods_ended(now).update(status=Status.EXPIRED, expired_at=now)
    just_expired = Subscription.objects.filter(status=Status.EXPIRED, expired_at=now)
    catalogs = (
        Catalog.objects.filter(published=True)
        .filter(Exists(just_expired.filter(account=OuterRef("account"), plan=OuterRef("required_plan"))))
        .exclude(
            Exists(
                Subscription.objects.filter(
                    account=OuterRef("account"), plan=OuterRef("required_plan"), status__in=LIVE
                )
            )
        )
        .update(published=False, unpublished_at=now, unpublished_reason="The plan it needs expired.")
    )
    queued = notifications_enqueue_many(messages=_expiry_messages(just_expired)) if trials + periods else 0
    return {
        "trials_expired": trials,
        "periods_expired": periods,
        "catalogs_unpublished": catalogs,
        "notices_queued": queued,
    }


def _expiry_messages(expired: QuerySet) -> Iterator[dict]:
    rows = (
        expired.order_by("account_id", "id")
        .values_list("id", "account_id", "account__name", "account__email", "plan__name", "trial_ends_at")
        .iterator(chunk_size=2000)
    )
    for account_id, group in groupby(rows, key=lambda row: row[1]):
        group = list(group)
        first = group[0]
        yield {
            "recipient": first[3],
            "template": "accounts/subscription_expired",
            "context": {
                "account_name": first[2],
                "plans": [row[4] for row in group],
                "was_trial": any(row[5] is not None for row in group),
                "renew_url": site_link(settings.ACCOUNTS_SUBSCRIPTION_PATH, account_id=account_id),
            },
            # Each subscription expires once, so its first id names this notice for good.
            "dedupe_key": f"subscription-expired:{account_id}:{first[0]}",
        }
