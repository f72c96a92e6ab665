from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import Account, Catalog, Subscription
from billing.services.subscriptions import subscriptions_expire

from .conftest import at, queued, run

pytestmark = pytest.mark.django_db
NOW = at("2025-03-01", 12)


def statuses() -> dict:
    return dict(Subscription.objects.values_list("pk", "status"))


def test_it_expires_ended_trials_and_periods_and_unpublishes_their_catalogs(build):
    pro = build.plan("pro")
    starter = build.plan("starter", "29.00", catalog=False)
    trial_over = build.subscription(plan=pro, status="trial", trial_ends_at=NOW - timedelta(minutes=1))
    trial_on = build.subscription(plan=pro, status="trial", trial_ends_at=NOW + timedelta(days=2))
    paid_over = build.subscription(plan=pro, status="active", current_period_end=NOW)
    cancelled_over = build.subscription(plan=starter, status="cancelled", current_period_end=NOW - timedelta(days=1))
    paid_on = build.subscription(plan=pro, status="active", current_period_end=NOW + timedelta(days=20))
    # Lost one pro subscription but holds another: the catalog stays.
    kept_account = build.account()
    build.subscription(account=kept_account, plan=pro, status="trial", trial_ends_at=NOW - timedelta(hours=1))
    build.subscription(account=kept_account, plan=pro, status="active", current_period_end=NOW + timedelta(days=9))
    lost = build.catalog(account=trial_over.account, plan=pro)
    lost_paid = build.catalog(account=paid_over.account, plan=pro)
    kept = build.catalog(account=kept_account, plan=pro)
    other = build.catalog(account=trial_on.account, plan=pro)

    summary = run("expire_subscriptions", "--as-of", NOW.isoformat())

    assert summary == {
        "trials_expired": 2,
        "periods_expired": 2,
        "catalogs_unpublished": 2,
        "notices_queued": 4,
    }
    now_status = statuses()
    assert now_status[trial_over.pk] == now_status[paid_over.pk] == now_status[cancelled_over.pk] == "expired"
    assert now_status[trial_on.pk] == "trial" and now_status[paid_on.pk] == "active"
    assert Subscription.objects.get(pk=trial_over.pk).expired_at == NOW
    published = dict(Catalog.objects.values_list("pk", "published"))
    assert published == {lost.pk: False, lost_paid.pk: False, kept.pk: True, other.pk: True}
    assert Catalog.objects.get(pk=lost.pk).unpublished_at == NOW
    recipients = sorted(m.recipient for m in queued("billing/subscription_expired"))
    expected = [trial_over.account.email, paid_over.account.email, cancelled_over.account.email, kept_account.email]
    assert recipients == sorted(expected)


def test_it_queues_one_notice_per_account(build):
    account = build.account()
    for code in ("pro", "business"):
        build.subscription(account=account, plan=build.plan(code), status="trial", trial_ends_at=NOW)
    assert run("expire_subscriptions", "--as-of", NOW.isoformat())["notices_queued"] == 1
    [message] = queued("billing/subscription_expired")
    assert sorted(message.context["plans"]) == ["Business", "Pro"]


def test_it_changes_nothing_on_a_second_run(build):
    build.subscription(status="trial", trial_ends_at=NOW)
    run("expire_subscriptions", "--as-of", NOW.isoformat())
    again = run("expire_subscriptions", "--as-of", NOW.isoformat())
    later = run("expire_subscriptions", "--as-of", (NOW + timedelta(minutes=5)).isoformat())
    assert again["trials_expired"] == later["trials_expired"] == 0
    assert again["notices_queued"] == later["notices_queued"] == 0
    assert len(queued()) == 1


def test_it_writes_nothing_on_a_dry_run(build):
    build.subscription(status="trial", trial_ends_at=NOW)
    summary = run("expire_subscriptions", "--as-of", NOW.isoformat(), "--dry-run")
    assert summary["trials_expired"] == 1
    assert set(statuses().values()) == {"trial"}
    assert queued() == []


def test_it_rolls_back_expiry_catalogs_and_notices_together(build, monkeypatch):
    from billing.services import subscriptions

    sub = build.subscription(status="trial", trial_ends_at=NOW)
    catalog = build.catalog(account=sub.account, plan=sub.plan)

    def broken(**kwargs):
        list(kwargs["messages"])
        raise RuntimeError("worker killed")

    monkeypatch.setattr(subscriptions, "notifications_enqueue_many", broken)
    with pytest.raises(RuntimeError):
        subscriptions_expire(now=NOW)
    sub.refresh_from_db()
    catalog.refresh_from_db()
    assert (sub.status, catalog.published, len(queued())) == ("trial", True, 0)
    monkeypatch.undo()
    assert subscriptions_expire(now=NOW)["trials_expired"] == 1


@pytest.mark.postgres
def test_it_issues_the_same_queries_for_10_and_900_subscriptions(build):
    plan = build.plan()

    def queries(count: int, moment) -> int:
        accounts = Account.objects.bulk_create(
            [Account(name=f"A{i}", email=f"a{i}-{count}@example.com") for i in range(count)]
        )
        Subscription.objects.bulk_create(
            [Subscription(account=a, plan=plan, status="trial", trial_ends_at=moment, started_at=NOW) for a in accounts]
        )
        with CaptureQueriesContext(connection) as captured:
            assert subscriptions_expire(now=moment)["trials_expired"] == count
        return len(captured)

    # Under 1,000 notices: one notifications batch either way.
    assert queries(10, NOW) == queries(900, NOW + timedelta(hours=1))
