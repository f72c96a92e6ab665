"""The move of the subscription models from billing to accounts keeps every row (both databases)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("billing", "0003_payout_lifecycle_and_statement_deliveries"), ("accounts", None)]
T = datetime(2025, 3, 1, 12, tzinfo=UTC)


def migrate(targets) -> object:
    """Migrate to ``targets``; returns the apps registry of that state."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    nodes = [t for t in targets if t[1] is not None] + executor.loader.graph.leaf_nodes("notifications")
    return executor.loader.project_state(nodes).apps


def latest() -> list:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def test_it_moves_every_subscription_row_from_billing_to_accounts():
    old = migrate(BEFORE)
    try:
        plan = old.get_model("billing", "Plan").objects.create(
            code="pro", name="Pro", monthly_price=Decimal("79.00"), includes_catalog=True
        )
        account = old.get_model("billing", "Account").objects.create(name="Acme", email="acme@example.com")
        sub = old.get_model("billing", "Subscription").objects.create(
            account=account, plan=plan, status="trial", started_at=T, trial_ends_at=T
        )
        catalog = old.get_model("billing", "Catalog").objects.create(
            account=account, name="Listings", required_plan=plan, published=True
        )
        old.get_model("billing", "BillingNotice").objects.create(
            kind="trial_reminder", tier=7, subscription=sub, dedupe_key=f"trial-reminder:{sub.pk}:tier7", sent_on=T
        )
        old.get_model("billing", "DailySnapshot").objects.create(
            day=date(2025, 2, 28), mrr=Decimal("79.00"), active_subscriptions=1, trial_subscriptions=2,
            new_subscriptions=3, churned_subscriptions=4, rent_billed_mtd=Decimal("10.00"),
            rent_collected_mtd=Decimal("5.00"), units_total=2, units_occupied=1,
            occupancy_percent=Decimal("50.00"), created_at=T,
        )  # fmt: skip
        old.get_model("notifications", "Notification").objects.create(
            recipient="acme@example.com", template="billing/subscription_expired", context={}, send_after=T
        )
    finally:
        new = migrate(latest())

    Subscription = new.get_model("accounts", "Subscription")
    moved = Subscription.objects.select_related("account", "plan").get()
    assert (moved.pk, moved.account.email, moved.plan.code, moved.status) == (
        sub.pk,
        "acme@example.com",
        "pro",
        "trial",
    )
    assert new.get_model("accounts", "Catalog").objects.filter(pk=catalog.pk, published=True).count() == 1
    notice = new.get_model("accounts", "SubscriptionNotice").objects.get()
    assert (notice.subscription_id, notice.tier, notice.dedupe_key) == (sub.pk, 7, f"trial-reminder:{sub.pk}:tier7")
    assert new.get_model("billing", "BillingNotice").objects.count() == 0
    snapshot = new.get_model("accounts", "SubscriptionSnapshot").objects.get()
    assert (snapshot.day, snapshot.mrr, snapshot.churned_subscriptions) == (date(2025, 2, 28), Decimal("79.00"), 4)
    assert new.get_model("billing", "DailySnapshot").objects.get().units_occupied == 1
    assert new.get_model("notifications", "Notification").objects.get().template == "accounts/subscription_expired"
    # The moved tables keep counting their ids where billing left off.
    account2 = new.get_model("accounts", "Account").objects.create(name="Beta", email="beta@example.com")
    assert account2.pk > account.pk
