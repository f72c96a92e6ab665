"""The accounts part of the demo data set (``manage.py seed_demo``): plans, accounts in every
subscription state, and the catalogs of the plans that include one.

Everything is derived from ``random.Random(seed)`` and the as-of date, so the same call gives
the same rows.
"""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from .models import Account, Catalog, Plan, Subscription

DEMO_DOMAIN = "demo.cronhouse.test"
SIZES = {"small": 12, "medium": 250, "large": 25_000}
DEMO_JOBS = ["trial-reminders", "expire-subscriptions", "subscription-analytics"]
CHUNK = 5_000
STREETS = ["Oak", "Maple", "Cedar", "Elm", "Birch", "Willow", "Aspen", "Harbor", "Mill", "Park", "Lake", "Hill"]


def demo_present() -> bool:
    return Account.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").exists()


def _at(day: date, hour: int = 6) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour)))


def demo_seed(*, size: str, count: int | None, today: date, seed: int = 7) -> dict:
    """``count`` accounts (or the size's number), each with one subscription. Returns counts."""
    accounts = count if count is not None else SIZES[size]
    rng = random.Random(seed)
    with transaction.atomic():
        _subscriptions(rng, accounts, today)
    return {
        "accounts": Account.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").count(),
        "subscriptions": Subscription.objects.count(),
    }


def _subscriptions(rng: random.Random, count: int, today: date) -> None:
    now = _at(today, 12)
    plans = [
        Plan.objects.get_or_create(code="starter", defaults={"name": "Starter", "monthly_price": Decimal("29.00")})[0],
        Plan.objects.get_or_create(
            code="pro", defaults={"name": "Pro", "monthly_price": Decimal("79.00"), "includes_catalog": True}
        )[0],
        Plan.objects.get_or_create(
            code="business",
            defaults={"name": "Business", "monthly_price": Decimal("199.00"), "includes_catalog": True},
        )[0],
    ]
    accounts = Account.objects.bulk_create(
        [
            Account(name=f"{rng.choice(STREETS)} Realty {i + 1}", email=f"account{i + 1}@{DEMO_DOMAIN}")
            for i in range(count)
        ],
        batch_size=CHUNK,
    )
    subscriptions, catalogs = [], []
    states = [
        "trial_7",
        "trial_1",
        "trial_over",
        "active",
        "active",
        "active",
        "active_over",
        "cancelled",
        "cancelled_over",
        "expired",
    ]
    for i, account in enumerate(accounts):
        plan = plans[i % 3]
        state = states[i % len(states)]
        started = now - timedelta(days=rng.randint(20, 400))
        sub = Subscription(account=account, plan=plan, started_at=started)
        if state.startswith("trial"):
            ends = {"trial_7": 6.5, "trial_1": 0.5, "trial_over": -1}[state]
            sub.status, sub.trial_ends_at = Subscription.Status.TRIAL, now + timedelta(days=ends)
            sub.started_at = sub.trial_ends_at - timedelta(days=plan.trial_days)
        elif state == "expired":
            sub.status, sub.expired_at = Subscription.Status.EXPIRED, now - timedelta(days=rng.randint(2, 60))
            sub.current_period_end = sub.expired_at
        else:
            sub.status = Subscription.Status.CANCELLED if state.startswith("cancelled") else Subscription.Status.ACTIVE
            over = state.endswith("_over")
            sub.current_period_end = now + timedelta(days=-1 if over else rng.randint(2, 28))
            if sub.status == Subscription.Status.CANCELLED:
                sub.cancelled_at = now - timedelta(days=rng.randint(1, 20))
        subscriptions.append(sub)
        if plan.includes_catalog:
            catalogs.append(
                Catalog(
                    account=account,
                    name=f"{account.name} listings",
                    required_plan=plan,
                    published=sub.status != Subscription.Status.EXPIRED,
                )
            )
    Subscription.objects.bulk_create(subscriptions, batch_size=CHUNK)
    Catalog.objects.bulk_create(catalogs, batch_size=CHUNK)
