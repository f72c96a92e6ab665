"""Builders for hand-made accounts data and the local Stripe API (helpers to run jobs: tests/job_commands.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from accounts.models import Account, Catalog, Plan, Subscription
from tests.job_commands import at

from .stripe_server import FakeStripe


class Builder:
    """Small, explicit builders: every test shows the rows it relies on."""

    def __init__(self) -> None:
        self.count = 0

    def _n(self) -> int:
        self.count += 1
        return self.count

    def plan(self, code: str = "pro", price: str = "79.00", catalog: bool = True) -> Plan:
        return Plan.objects.get_or_create(
            code=code, defaults={"name": code.title(), "monthly_price": Decimal(price), "includes_catalog": catalog}
        )[0]

    def account(self) -> Account:
        n = self._n()
        return Account.objects.create(name=f"Account {n}", email=f"account{n}@example.com")

    def subscription(self, *, account: Account | None = None, plan: Plan | None = None, **fields) -> Subscription:
        fields.setdefault("started_at", at("2025-01-01"))
        return Subscription.objects.create(account=account or self.account(), plan=plan or self.plan(), **fields)

    def catalog(self, *, account: Account, plan: Plan, published: bool = True) -> Catalog:
        return Catalog.objects.create(
            account=account, name=f"Catalog {self._n()}", required_plan=plan, published=published
        )


@pytest.fixture
def build(db) -> Builder:
    return Builder()


@pytest.fixture
def stripe_api(settings):
    """A Stripe API on 127.0.0.1 (``stripe_server.FakeStripe``), and the key and base pointing at it."""
    fake = FakeStripe()
    settings.ACCOUNTS_STRIPE_API_KEY = "sk_test_local"
    settings.ACCOUNTS_STRIPE_API_BASE = fake.url
    settings.ACCOUNTS_STRIPE_MAX_RETRIES = 2
    settings.JOBS_HTTP_GUARD_ALLOW_LOOPBACK = True
    yield fake
    fake.stop()
