"""The accounts part of the demo data set (``manage.py seed_demo``): plans, accounts in every
subscription state, and the catalogs of the plans that include one.

Everything is derived from ``random.Random(seed)`` and the as-of date, so the same call gives
the same rows.
"""

from __future__ import annotations

import hashlib
import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import (
    Account,
    Affiliate,
    AffiliateConversion,
    Catalog,
    CreditBalance,
    DeletionRequest,
    ErrorLog,
    Invitation,
    License,
    Membership,
    Plan,
    PushSubscription,
    Role,
    Subscription,
)

DEMO_DOMAIN = "demo.cronhouse.test"
SIZES = {"small": 12, "medium": 250, "large": 25_000}
# Gated jobs run only where their feature is on (seed_jobs leaves them out otherwise).
DEMO_JOBS = [
    "trial-reminders",
    "expire-subscriptions",
    "subscription-analytics",
    "cleanup-invitations",
    "cleanup-push-subscriptions",
    "purge-error-logs",
    "check-license-expiration",
    "check-low-credits-alerts",
    "approve-mature-affiliate-conversions",
    "process-account-deletions",
    # Against the demo's stand-ins, served by the web server (accounts.demo_services).
    "sync-stripe",
    "check-provider-credits",
]
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
        _workspaces(today)
    return {
        "accounts": Account.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").count(),
        "subscriptions": Subscription.objects.count(),
    }


def _subscriptions(rng: random.Random, count: int, today: date) -> None:
    now = _at(today, 12)
    plans = [
        Plan.objects.get_or_create(
            code="starter",
            defaults={"name": "Starter", "monthly_price": Decimal("29.00"), "stripe_price_id": "price_demo_starter"},
        )[0],
        Plan.objects.get_or_create(
            code="pro",
            defaults={
                "name": "Pro",
                "monthly_price": Decimal("79.00"),
                "includes_catalog": True,
                "stripe_price_id": "price_demo_pro",
            },
        )[0],
        Plan.objects.get_or_create(
            code="business",
            defaults={
                "name": "Business",
                "monthly_price": Decimal("199.00"),
                "includes_catalog": True,
                "stripe_price_id": "price_demo_business",
            },
        )[0],
    ]
    accounts = Account.objects.bulk_create(
        [
            # Every third organization writes in German, so the demo mail shows both languages.
            Account(
                name=f"{rng.choice(STREETS)} Realty {i + 1}",
                email=f"account{i + 1}@{DEMO_DOMAIN}",
                language="de" if i % 3 == 2 else "",
            )
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


def _days(count: float) -> timedelta:
    return timedelta(days=count)


def _workspaces(today: date) -> None:
    """A few rows for every other accounts job, so each of them has work on its first run:
    members and invitations, push subscriptions, licenses, credits, affiliates, deletion
    requests and error logs, some past their date and some not."""
    from django.contrib.auth import get_user_model

    now = _at(today, 12)
    accounts = list(Account.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").order_by("pk")[:6])
    if len(accounts) < 6:
        return  # a tiny --count: subscriptions only
    users = get_user_model().objects.bulk_create(
        [get_user_model()(username=f"demo-member-{i + 1}", email=f"member{i + 1}@{DEMO_DOMAIN}") for i in range(5)]
    )
    first = accounts[0]
    Membership.objects.bulk_create(
        [Membership(account=first, user=users[0], role=Role.OWNER, joined_at=now - _days(90))]
        + [Membership(account=first, user=u, role=Role.MEMBER, joined_at=now - _days(20)) for u in users[1:3]]
        + [Membership(account=accounts[1], user=users[3], role=Role.OWNER, joined_at=now - _days(40))]
        + [Membership(account=accounts[5], user=users[4], role=Role.OWNER, joined_at=now - _days(300))]
    )
    Invitation.objects.bulk_create(
        Invitation(
            account=first,
            email=f"invitee{i + 1}@{DEMO_DOMAIN}",
            token_hash=hashlib.sha256(f"demo-invite-{i}".encode()).hexdigest(),
            created_at=now - _days(10 - i),
            expires_at=now - _days(3 - i * 2),  # the first two have expired
        )
        for i in range(4)
    )
    PushSubscription.objects.bulk_create(
        [
            PushSubscription(
                account=first,
                endpoint=f"https://push.example.com/demo/{i}",
                created_at=now - _days(200),
                last_used_at=used,
                expires_at=expires,
            )
            for i, (used, expires) in enumerate(
                [
                    (None, now - _days(1)),  # expired
                    (now - _days(120), None),  # unused for 120 days
                    (now - _days(2), None),
                    (now - _days(1), now + _days(30)),
                ]
            )
        ]
    )
    ErrorLog.objects.bulk_create(
        ErrorLog(account=first, created_at=now - _days(age), message=f"Import failed: row {age} has no price")
        for age in (45, 40, 35, 3, 1)
    )
    License.objects.bulk_create(
        License(account=account, key=hashlib.sha256(f"demo-license-{i}".encode()).hexdigest(), expires_at=now + ends)
        for i, (account, ends) in enumerate(
            zip(accounts, [_days(6.5), _days(2.5), _days(0.5), -_days(1), _days(200)], strict=False)
        )
    )
    CreditBalance.objects.bulk_create(
        CreditBalance(account=account, balance=Decimal(balance), threshold=Decimal("50.00"))
        for account, balance in zip(accounts, ["12.00", "0.00", "75.00", "500.00"], strict=False)
    )
    affiliate = Affiliate.objects.create(
        name="Harbor Partners", email=f"partners@{DEMO_DOMAIN}", code="harbor", created_at=now - _days(120)
    )
    AffiliateConversion.objects.bulk_create(
        AffiliateConversion(
            affiliate=affiliate, account=account, commission=Decimal("25.00"), created_at=now - _days(age)
        )
        for account, age in zip(accounts, [75, 45, 31, 10, 2], strict=False)
    )
    _deletion_requests(accounts, users[4], now)
    _stripe_ids(accounts)


def _stripe_ids(accounts: list[Account]) -> None:
    """Link the first accounts to the demo's Stripe stand-in (``accounts.demo_services``): four
    customers, three subscriptions it lists, and one it no longer has (``sub_demo_gone``). Its
    fourth subscription has no local row (a missed webhook) and its fifth an unknown customer."""
    for number, account in enumerate(accounts[:4], 1):
        Account.objects.filter(pk=account.pk).update(stripe_customer_id=f"cus_demo_{number}")
    linked = ["sub_demo_1", "sub_demo_2", "sub_demo_3", None, "sub_demo_gone"]
    for account, stripe_id in zip(accounts, linked, strict=False):
        if stripe_id:
            first = Subscription.objects.filter(account=account).order_by("pk").values("pk")[:1]
            Subscription.objects.filter(pk__in=first).update(stripe_id=stripe_id)


def _deletion_requests(accounts: list[Account], owner, now: datetime) -> None:
    """One pending in its grace period, one cancelled, one the job carries out on its first run
    (past the grace period), and one completed earlier (its account is gone)."""
    grace = _days(settings.ACCOUNTS_DELETION_GRACE_DAYS)
    Status = DeletionRequest.Status
    DeletionRequest.objects.bulk_create(
        [
            DeletionRequest(account=accounts[3], account_name=accounts[3].name, requested_at=now - _days(5)),
            DeletionRequest(
                account=accounts[4],
                account_name=accounts[4].name,
                requested_at=now - _days(40),
                status=Status.CANCELLED,
                cancelled_at=now - _days(38),
            ),
            DeletionRequest(
                account=accounts[5],
                account_name=accounts[5].name,
                requested_by=owner,
                requested_at=now - grace - _days(1),
            ),
            DeletionRequest(
                account=None,
                account_name="Lakeside Lettings (demo, deleted)",
                requested_at=now - grace - _days(20),
                status=Status.COMPLETED,
                started_at=now - _days(20),
                stripe_cancelled_at=now - _days(20),
                completed_at=now - _days(20),
                outcome={
                    "stripe_subscriptions_cancelled": 1,
                    "rows_deleted": {"accounts.Account": 1, "accounts.Membership": 2, "accounts.Subscription": 1},
                    "rows_anonymised": {},
                    "users_deleted": 2,
                    "notices_queued": 1,
                },
            ),
        ]
    )
