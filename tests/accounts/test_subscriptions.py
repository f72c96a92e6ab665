from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Account, Catalog, Subscription, SubscriptionNotice, SubscriptionSnapshot
from accounts.services.subscriptions import subscriptions_expire
from tests.job_commands import at, queued, run

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
        "catalogs_republished": 0,
        "notices_queued": 4,
    }
    now_status = statuses()
    assert now_status[trial_over.pk] == now_status[paid_over.pk] == now_status[cancelled_over.pk] == "expired"
    assert now_status[trial_on.pk] == "trial" and now_status[paid_on.pk] == "active"
    assert Subscription.objects.get(pk=trial_over.pk).expired_at == NOW
    published = dict(Catalog.objects.values_list("pk", "published"))
    assert published == {lost.pk: False, lost_paid.pk: False, kept.pk: True, other.pk: True}
    assert Catalog.objects.get(pk=lost.pk).unpublished_at == NOW
    recipients = sorted(m.recipient for m in queued("accounts/subscription_expired"))
    expected = [trial_over.account.email, paid_over.account.email, cancelled_over.account.email, kept_account.email]
    assert recipients == sorted(expected)


def catalog_rows() -> list[tuple]:
    return list(Catalog.objects.order_by("pk").values_list("pk", "published", "unpublished_at", "republished_at"))


def test_it_keeps_a_catalog_published_while_another_plan_of_the_account_includes_catalogs(build):
    account = build.account()
    pro, business = build.plan("pro"), build.plan("business", "199.00")
    build.subscription(account=account, plan=pro, status="active", current_period_end=NOW)
    build.subscription(account=account, plan=business, status="active", current_period_end=NOW + timedelta(days=20))
    catalog = build.catalog(account=account, plan=pro)

    summary = run("expire_subscriptions", "--as-of", NOW.isoformat())

    assert (summary["periods_expired"], summary["catalogs_unpublished"], summary["notices_queued"]) == (1, 0, 1)
    assert catalog_rows() == [(catalog.pk, True, None, None)]
    [message] = queued("accounts/subscription_expired")
    assert (message.recipient, message.context["plans"], message.context["catalogs"]) == (account.email, ["Pro"], [])


def test_it_unpublishes_when_the_last_plan_with_catalogs_expires_and_links_the_catalog(build, settings):
    settings.SITE_URL = "https://app.example.com"
    account = build.account()
    starter = build.plan("starter", "29.00", catalog=False)
    build.subscription(account=account, plan=starter, status="active", current_period_end=NOW + timedelta(days=20))
    build.subscription(account=account, plan=build.plan("pro"), status="trial", trial_ends_at=NOW)
    catalog = build.catalog(account=account, plan=build.plan("pro"))

    summary = run("expire_subscriptions", "--as-of", NOW.isoformat())

    assert (summary["trials_expired"], summary["catalogs_unpublished"], summary["notices_queued"]) == (1, 1, 1)
    assert catalog_rows() == [(catalog.pk, False, NOW, None)]
    [message] = queued("accounts/subscription_expired")
    assert message.context["catalogs"] == [
        {"name": catalog.name, "url": f"https://app.example.com/catalogs/{catalog.pk}/"}
    ]
    assert message.context["renew_url"] == f"https://app.example.com/account/{account.pk}/subscription/"


def test_it_republishes_the_catalog_on_the_run_after_a_renewal_and_then_changes_nothing(build, settings):
    settings.SITE_URL = "https://app.example.com"
    account = build.account()
    pro, business = build.plan("pro"), build.plan("business", "199.00")
    build.subscription(account=account, plan=pro, status="active", current_period_end=NOW)
    catalog = build.catalog(account=account, plan=pro)
    hidden_by_hand = build.catalog(account=account, plan=pro, published=False)
    run("expire_subscriptions", "--as-of", NOW.isoformat())
    assert catalog_rows() == [(catalog.pk, False, NOW, None), (hidden_by_hand.pk, False, None, None)]

    # The customer upgrades: a new live subscription to another plan that includes catalogs.
    build.subscription(account=account, plan=business, status="active", current_period_end=NOW + timedelta(days=30))
    later = NOW + timedelta(minutes=5)
    summaries = [
        run("expire_subscriptions", "--as-of", moment.isoformat())
        for moment in (later, later, later + timedelta(minutes=5))
    ]

    assert [s["catalogs_republished"] for s in summaries] == [1, 0, 0]
    assert [s["notices_queued"] for s in summaries] == [1, 0, 0]
    assert catalog_rows() == [(catalog.pk, True, None, later), (hidden_by_hand.pk, False, None, None)]
    [back] = queued("accounts/catalogs_republished")
    assert back.recipient == account.email
    assert back.context["catalogs"] == [
        {"name": catalog.name, "url": f"https://app.example.com/catalogs/{catalog.pk}/"}
    ]
    assert len(queued()) == 2  # the expiry e-mail and this one, each once


def test_it_forecasts_catalog_changes_on_a_dry_run(build):
    account = build.account()
    build.subscription(account=account, plan=build.plan("pro"), status="trial", trial_ends_at=NOW)
    build.catalog(account=account, plan=build.plan("pro"))
    returning = build.account()
    build.subscription(
        account=returning, plan=build.plan("pro"), status="active", current_period_end=NOW + timedelta(days=3)
    )
    back = build.catalog(account=returning, plan=build.plan("pro"), published=False)
    Catalog.objects.filter(pk=back.pk).update(unpublished_at=NOW, unpublished_reason="The plan it needs expired.")
    before = catalog_rows()

    summary = run("expire_subscriptions", "--as-of", NOW.isoformat(), "--dry-run")

    assert (summary["catalogs_unpublished"], summary["catalogs_republished"]) == (1, 1)
    assert catalog_rows() == before and queued() == []


def test_it_queues_one_notice_per_account(build):
    account = build.account()
    for code in ("pro", "business"):
        build.subscription(account=account, plan=build.plan(code), status="trial", trial_ends_at=NOW)
    assert run("expire_subscriptions", "--as-of", NOW.isoformat())["notices_queued"] == 1
    [message] = queued("accounts/subscription_expired")
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
    from accounts.services import subscriptions

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


def test_it_reminds_trials_7_days_and_1_day_before_they_end_each_once(build):
    sub = build.subscription(status="trial", trial_ends_at=at("2025-02-08", 12))
    build.subscription(status="active", current_period_end=at("2025-02-08", 12))
    results = [
        run("trial_reminders", "--as-of", moment)["notices"]
        for moment in [
            "2025-01-31T09:00:00",
            "2025-02-01T12:00:00",
            "2025-02-02T09:00:00",
            "2025-02-07T13:00:00",
            "2025-02-07T14:00:00",
        ]
    ]
    assert results == [0, 1, 0, 1, 0]
    messages = queued("accounts/trial_reminder")
    assert [m.context["tier"] for m in messages] == [7, 1]
    assert {m.recipient for m in messages} == {sub.account.email}
    assert sorted(SubscriptionNotice.objects.values_list("subscription_id", "tier")) == [(sub.pk, 1), (sub.pk, 7)]


def test_it_renders_the_subscription_messages_with_absolute_links(build, settings):
    from notifications.email.rendering import message_render

    settings.SITE_URL = "https://app.example.com/"
    sub = build.subscription(status="trial", trial_ends_at=at("2025-02-03", 12))
    run("trial_reminders", "--as-of", "2025-02-02T12:00:00")
    run("expire_subscriptions", "--as-of", "2025-02-04T12:00:00")
    link = f"https://app.example.com/account/{sub.account_id}/subscription/"
    for template in ("accounts/trial_reminder", "accounts/subscription_expired"):
        [message] = queued(template)
        subject, text, html = message_render(message)
        assert subject and "{{" not in text and html
        assert link in text and link in html, template


def test_it_snapshots_the_subscriptions_of_the_day_once(build):
    pro, starter = build.plan("pro", "79.00"), build.plan("starter", "29.00", catalog=False)
    build.subscription(plan=pro, status="active", current_period_end=at("2025-03-01"))
    build.subscription(
        plan=starter, status="active", current_period_end=at("2025-03-01"), started_at=at("2025-02-09", 8)
    )
    build.subscription(plan=pro, status="trial", trial_ends_at=at("2025-02-20"))
    build.subscription(plan=pro, status="expired", expired_at=at("2025-02-09", 17))

    summary = run("subscription_analytics", "--as-of", "2025-02-10T01:00:00")

    snapshot = SubscriptionSnapshot.objects.get()
    assert snapshot.day == date(2025, 2, 9) and summary["created"] == 1
    assert (snapshot.mrr, snapshot.active_subscriptions, snapshot.trial_subscriptions) == (Decimal("108.00"), 2, 1)
    assert (snapshot.new_subscriptions, snapshot.churned_subscriptions) == (1, 1)
    assert run("subscription_analytics", "--as-of", "2025-02-10T02:00:00")["created"] == 0
    assert run("subscription_analytics", "--as-of", "2025-02-10T03:00:00", "--dry-run")["created"] == 0
    assert SubscriptionSnapshot.objects.count() == 1


@pytest.mark.postgres
def test_it_reminds_trials_in_constant_queries(build):
    plan = build.plan()

    def queries(count: int, moment) -> int:
        accounts = Account.objects.bulk_create(Account(name=f"A{i}", email=f"a{i}@example.com") for i in range(count))
        Subscription.objects.bulk_create(
            Subscription(
                account=a, plan=plan, status="trial", trial_ends_at=moment + timedelta(days=5), started_at=moment
            )
            for a in accounts
        )
        with CaptureQueriesContext(connection) as captured:
            summary = run("trial_reminders", "--as-of", moment.isoformat(), "--batch-size", "5000")
        assert summary["notices"] == count
        return len(captured)

    assert queries(10, at("2025-02-01")) == queries(900, at("2025-03-01"))
