"""sync-stripe against a local server speaking Stripe's documented list / retrieve endpoints."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management.base import CommandError

from accounts.models import Subscription
from tests.job_commands import at, run

pytestmark = pytest.mark.django_db
NOW = at("2025-03-01", 4)
PERIOD_END = int((NOW + timedelta(days=20)).timestamp())


def remote(sub_id: str, *, customer: str, price: str = "price_pro", status: str = "active", **extra) -> dict:
    item = {"id": f"si_{sub_id}", "object": "subscription_item", "price": {"id": price, "object": "price"},
            "current_period_end": PERIOD_END}  # fmt: skip
    body = {"id": sub_id, "object": "subscription", "status": status, "customer": customer,
            "cancel_at_period_end": False, "trial_end": None, "canceled_at": None, "ended_at": None,
            "start_date": int((NOW - timedelta(days=40)).timestamp()),
            "items": {"object": "list", "data": [item], "has_more": False, "url": "/v1/items"}}  # fmt: skip
    body.update(extra)
    return body


@pytest.fixture
def customers(build):
    pro, business = build.plan("pro"), build.plan("business", "199.00")
    pro.stripe_price_id, business.stripe_price_id = "price_pro", "price_business"
    pro.save()
    business.save()
    accounts = [build.account() for _ in range(3)]
    for n, account in enumerate(accounts, start=1):
        account.stripe_customer_id = f"cus_{n}"
        account.save()
    return accounts, pro, business


def test_it_reconciles_statuses_and_creates_missed_subscriptions_across_pages(build, stripe_api, customers):
    (a1, a2, a3), pro, business = customers
    stale = build.subscription(account=a1, plan=pro, status="trial", trial_ends_at=NOW + timedelta(days=2),
                               stripe_id="sub_1")  # fmt: skip
    ended = build.subscription(account=a2, plan=pro, status="active", current_period_end=NOW + timedelta(days=5),
                               stripe_id="sub_2")  # fmt: skip
    catalog = build.catalog(account=a2, plan=pro)
    stripe_api.subscriptions = [
        remote("sub_1", customer="cus_1"),
        remote("sub_2", customer="cus_2", status="canceled", ended_at=int(NOW.timestamp()) - 60),
        remote(
            "sub_3",
            customer="cus_3",
            price="price_business",
            status="trialing",
            trial_end=int((NOW + timedelta(days=9)).timestamp()),
        ),  # fmt: skip
        remote("sub_4", customer="cus_unknown"),
        remote("sub_5", customer="cus_1", status="incomplete"),
    ]

    summary = run("sync_stripe", "--as-of", NOW.isoformat())

    assert summary == {"seen": 5, "updated": 2, "created": 1, "unmatched": 1, "missing_at_stripe": 0,
                       "catalogs_unpublished": 1}  # fmt: skip
    stale.refresh_from_db()
    assert (stale.status, int(stale.current_period_end.timestamp())) == ("active", PERIOD_END)
    ended.refresh_from_db()
    assert (ended.status, int(ended.expired_at.timestamp())) == ("expired", int(NOW.timestamp()) - 60)
    created = Subscription.objects.get(stripe_id="sub_3")
    assert (created.account_id, created.plan_id, created.status) == (a3.pk, business.pk, "trial")
    catalog.refresh_from_db()
    assert catalog.published is False
    # Three pages of two, each after the last id of the page before; the key as a bearer token.
    pages = [(path, q.get("starting_after")) for path, q, _ in stripe_api.requests]
    assert pages == [("/v1/subscriptions", None), ("/v1/subscriptions", "sub_2"), ("/v1/subscriptions", "sub_4")]
    assert {auth for _, _, auth in stripe_api.requests} == {"Bearer sk_test_local"}

    again = run("sync_stripe", "--as-of", (NOW + timedelta(hours=4)).isoformat())
    assert (again["updated"], again["created"], again["catalogs_unpublished"]) == (0, 0, 0)
    assert Subscription.objects.count() == 3


def test_it_retrieves_local_subscriptions_stripe_did_not_list(build, stripe_api, customers):
    (a1, a2, _), pro, _ = customers
    build.subscription(account=a1, plan=pro, status="active", current_period_end=NOW, stripe_id="sub_gone")
    moved = build.subscription(account=a2, plan=pro, status="active", current_period_end=NOW, stripe_id="sub_hidden")
    hidden = remote("sub_hidden", customer="cus_2", cancel_at_period_end=True)
    # The listing shows nothing; sub_hidden is only found by retrieve.
    original_page = stripe_api.page
    stripe_api.page = lambda query: {**original_page(query), "data": [], "has_more": False}
    stripe_api.subscriptions = [hidden]

    summary = run("sync_stripe", "--as-of", NOW.isoformat())

    assert (summary["missing_at_stripe"], summary["updated"]) == (1, 1)
    moved.refresh_from_db()
    assert moved.status == "cancelled"
    assert [path for path, _, _ in stripe_api.requests][1:] == [
        "/v1/subscriptions/sub_gone",
        "/v1/subscriptions/sub_hidden",
    ]


def test_it_retries_server_errors_and_retryable_rate_limits(build, stripe_api, customers):
    (a1, _, _), pro, _ = customers
    stripe_api.subscriptions = [remote("sub_1", customer="cus_1")]
    stripe_api.failures = [500, 429]

    summary = run("sync_stripe", "--as-of", NOW.isoformat())

    assert summary["created"] == 1
    assert len(stripe_api.requests) == 3


def test_it_fails_the_run_when_stripe_stays_down_and_keeps_committed_pages(build, stripe_api, customers):
    (a1, a2, a3), pro, _ = customers
    stripe_api.subscriptions = [remote(f"sub_{n}", customer=f"cus_{n}") for n in (1, 2, 3)]
    # The first page answers; every request for the second one gets a 503 (the first try and two retries).
    stripe_api.refuse = lambda path, query: 503 if "starting_after" in query else None
    with pytest.raises(CommandError, match="Stripe answered 503") as failure:
        run("sync_stripe", "--as-of", NOW.isoformat())
    assert "sk_test_local" not in str(failure.value)
    assert sorted(Subscription.objects.values_list("stripe_id", flat=True)) == ["sub_1", "sub_2"]
    assert len(stripe_api.requests) == 4

    stripe_api.refuse = None
    summary = run("sync_stripe", "--as-of", NOW.isoformat())
    assert (summary["created"], Subscription.objects.count()) == (1, 3)


def test_it_refuses_a_stripe_address_the_outbound_guard_forbids(build, stripe_api, settings, customers):
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = False
    with pytest.raises(CommandError, match="is not allowed: .*loopback"):
        run("sync_stripe", "--as-of", NOW.isoformat())
    assert stripe_api.requests == []
