"""expire-subscriptions: ended trials and ended paid periods become expired, in bulk; catalogs
follow the plans of their account.

The catalog rule: a catalog stays published while its account holds at least one live
subscription (trial, active, or cancelled but still in its paid period) to a plan that
``includes_catalog``. Which plan the catalog was made under does not matter: an account whose
Pro plan expires while its Business plan runs keeps its catalogs. A catalog this job
unpublished is published again by the next run after its account holds such a plan again
(renewal or upgrade): the job runs every five minutes, and it is the one place that changes
catalogs, whatever changed the subscription (the admin, a payment webhook, sync-stripe).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import groupby

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from notifications.services import notifications_enqueue_many

from ..languages import messages_localized
from ..links import site_link
from ..models import Catalog, Subscription

Status = Subscription.Status
LIVE = [Status.TRIAL, Status.ACTIVE, Status.CANCELLED]
UNPUBLISHED_REASON = "No active plan of the account includes catalogs."
# Catalogs this job unpublished (the second text is the reason written before the rule above).
JOB_REASONS = [UNPUBLISHED_REASON, "The plan it needs expired."]


def trials_ended(now: datetime) -> QuerySet:
    return Subscription.objects.filter(status=Status.TRIAL, trial_ends_at__lte=now)


def periods_ended(now: datetime) -> QuerySet:
    return Subscription.objects.filter(status__in=[Status.ACTIVE, Status.CANCELLED], current_period_end__lte=now)


def catalog_plans_held(*, excluding: QuerySet | None = None) -> QuerySet:
    """Live subscriptions of the outer catalog's account to a plan that includes catalogs."""
    held = Subscription.objects.filter(account=OuterRef("account"), status__in=LIVE, plan__includes_catalog=True)
    return held if excluding is None else held.exclude(pk__in=excluding.values("pk"))


def republishable() -> QuerySet:
    return Catalog.objects.filter(published=False, unpublished_reason__in=JOB_REASONS)


@transaction.atomic
def subscriptions_expire(*, now: datetime, dry_run: bool = False) -> dict:
    """One transaction:
    1. trials past their end, then paid periods past their end: one UPDATE each, stamped
       ``expired_at = now`` (that stamp names this run's expiries below);
    2. published catalogs of the accounts that just lost a plan, when no live plan of the
       account includes catalogs, are unpublished in one UPDATE;
    3. catalogs this job unpublished whose account holds such a plan again are republished in
       one UPDATE, stamped ``republished_at = now``;
    4. one expiry e-mail per account that lost a plan and one "catalogs are back" e-mail per
       account with republished catalogs are queued, streamed from the database.
    """
    if dry_run:
        return _forecast(now)
    trials = trials_ended(now).update(status=Status.EXPIRED, expired_at=now)
    periods = periods_ended(now).update(status=Status.EXPIRED, expired_at=now)
    just_expired = Subscription.objects.filter(status=Status.EXPIRED, expired_at=now)
    unpublished = catalogs_unpublish(lost=just_expired, now=now)
    republished = catalogs_republish(now=now)
    queued = (
        notifications_enqueue_many(messages=messages_localized(_expiry_messages(just_expired, now)))
        if trials + periods
        else 0
    )
    if republished:
        queued += notifications_enqueue_many(messages=messages_localized(_republished_messages(now)))
    return {
        "trials_expired": trials,
        "periods_expired": periods,
        "catalogs_unpublished": unpublished,
        "catalogs_republished": republished,
        "notices_queued": queued,
    }


def catalogs_unpublish(*, lost: QuerySet, now: datetime) -> int:
    """Step 2 above for the accounts of the ``lost`` subscriptions (sync-stripe uses it too,
    for subscriptions Stripe ended). Returns how many catalogs were unpublished."""
    return (
        Catalog.objects.filter(published=True)
        .filter(Exists(lost.filter(account=OuterRef("account"))))
        .exclude(Exists(catalog_plans_held()))
        .update(published=False, unpublished_at=now, unpublished_reason=UNPUBLISHED_REASON)
    )


def catalogs_republish(*, now: datetime) -> int:
    """Step 3 above. Returns how many catalogs were published again."""
    return (
        republishable()
        .filter(Exists(catalog_plans_held()))
        .update(published=True, unpublished_at=None, unpublished_reason="", republished_at=now)
    )


def _forecast(now: datetime) -> dict:
    due = trials_ended(now) | periods_ended(now)
    return {
        "trials_expired": trials_ended(now).count(),
        "periods_expired": periods_ended(now).count(),
        "catalogs_unpublished": Catalog.objects.filter(published=True)
        .filter(Exists(due.filter(account=OuterRef("account"))))
        .exclude(Exists(catalog_plans_held(excluding=due)))
        .count(),
        "catalogs_republished": republishable().filter(Exists(catalog_plans_held(excluding=due))).count(),
        "notices_queued": 0,
    }


def _catalog_link(catalog_id: int, account_id: int, name: str) -> dict:
    return {
        "name": name,
        "url": site_link(settings.ACCOUNTS_CATALOG_PATH, catalog_id=catalog_id, account_id=account_id),
    }


def _expiry_messages(expired: QuerySet, now: datetime) -> Iterator[tuple[int, dict]]:
    """Both streams in account order, merged as they are read: memory stays flat however many
    accounts lost a plan in this run."""
    lost = (
        Catalog.objects.filter(published=False, unpublished_at=now, unpublished_reason=UNPUBLISHED_REASON)
        .order_by("account_id", "id")
        .values_list("id", "account_id", "name")
        .iterator(chunk_size=2000)
    )
    lost_groups = groupby(lost, key=lambda row: row[1])
    pending = next(lost_groups, None)
    rows = (
        expired.order_by("account_id", "id")
        .values_list("id", "account_id", "account__name", "account__email", "plan__name", "trial_ends_at")
        .iterator(chunk_size=2000)
    )
    for account_id, group in groupby(rows, key=lambda row: row[1]):
        group = list(group)
        first = group[0]
        while pending is not None and pending[0] < account_id:
            pending = next(lost_groups, None)
        catalogs = []
        if pending is not None and pending[0] == account_id:
            catalogs = [_catalog_link(*row) for row in pending[1]]
            pending = next(lost_groups, None)
        yield (
            account_id,
            {
                "recipient": first[3],
                "template": "accounts/subscription_expired",
                "context": {
                    "account_name": first[2],
                    "plans": [row[4] for row in group],
                    "was_trial": any(row[5] is not None for row in group),
                    "catalogs": catalogs,
                    "renew_url": site_link(settings.ACCOUNTS_SUBSCRIPTION_PATH, account_id=account_id),
                },
                # Each subscription expires once, so its first id names this notice for good.
                "dedupe_key": f"subscription-expired:{account_id}:{first[0]}",
            },
        )


def _republished_messages(now: datetime) -> Iterator[tuple[int, dict]]:
    rows = (
        Catalog.objects.filter(published=True, republished_at=now)
        .order_by("account_id", "id")
        .values_list("id", "account_id", "name", "account__name", "account__email")
        .iterator(chunk_size=2000)
    )
    for account_id, group in groupby(rows, key=lambda row: row[1]):
        group = list(group)
        first = group[0]
        yield (
            account_id,
            {
                "recipient": first[4],
                "template": "accounts/catalogs_republished",
                "context": {
                    "account_name": first[3],
                    "catalogs": [_catalog_link(row[0], row[1], row[2]) for row in group],
                    "subscription_url": site_link(settings.ACCOUNTS_SUBSCRIPTION_PATH, account_id=account_id),
                },
                # One republication of these catalogs at this moment; a later one is a new message.
                "dedupe_key": f"catalogs-republished:{account_id}:{first[0]}:{now.isoformat()}",
            },
        )
