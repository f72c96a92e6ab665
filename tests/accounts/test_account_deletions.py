"""process-account-deletions: the GDPR queue, against the local Stripe server (stripe_server.py)."""

from __future__ import annotations

import io
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from accounts.models import (
    Account,
    Affiliate,
    AffiliateConversion,
    CreditBalance,
    DeletionRequest,
    ErrorLog,
    Invitation,
    License,
    LicenseWarning,
    Membership,
    PushSubscription,
    Role,
    Subscription,
    SubscriptionNotice,
)
from tests.job_commands import WorkerKilled, at, drain, killed_at, run

pytestmark = pytest.mark.django_db
NOW = at("2025-03-01", 10)
User = get_user_model()


def remote(sub_id: str, status: str = "active") -> dict:
    return {"id": sub_id, "object": "subscription", "status": status, "customer": "cus_gone"}


@pytest.fixture
def leaving(build, stripe_api):
    """An organization with a row in every accounts table, two Stripe subscriptions (one live,
    one Stripe ended long ago), an owner who is only here, a member who also works elsewhere,
    and a neighbour organization that must not be touched."""
    plan = build.plan()
    account = build.account()
    account.stripe_customer_id = "cus_gone"
    account.save()
    live = build.subscription(account=account, plan=plan, status="active", current_period_end=NOW, stripe_id="sub_live")
    build.subscription(account=account, plan=plan, status="expired", expired_at=NOW, stripe_id="sub_old")
    stripe_api.subscriptions = [remote("sub_live"), remote("sub_old", status="canceled")]
    SubscriptionNotice.objects.create(subscription=live, tier=7, dedupe_key="trial-reminder:x", sent_on=NOW.date())
    build.catalog(account=account, plan=plan)
    license = License.objects.create(account=account, key="KEY-gone", expires_at=NOW)
    LicenseWarning.objects.create(license=license, tier=7, dedupe_key="license:x", sent_at=NOW)
    CreditBalance.objects.create(account=account, balance=Decimal("5"), threshold=Decimal("1"))
    Invitation.objects.create(account=account, email="new@example.com", token_hash="a" * 64, created_at=NOW,
                              expires_at=NOW + timedelta(days=7))  # fmt: skip
    PushSubscription.objects.create(account=account, endpoint="https://push.example.com/1", created_at=NOW)
    ErrorLog.objects.create(account=account, created_at=NOW, message="Import by jane@example.com failed")
    affiliate = Affiliate.objects.create(name="Partner", email="p@example.com", code="partner", created_at=NOW)
    conversion = AffiliateConversion.objects.create(
        affiliate=affiliate, account=account, commission=Decimal("25.00"), created_at=NOW
    )
    owner = User.objects.create_user("owner", "owner@example.com", "pw")
    shared = User.objects.create_user("shared", "shared@example.com", "pw")
    Membership.objects.create(account=account, user=owner, role=Role.OWNER, joined_at=NOW)
    Membership.objects.create(account=account, user=shared, joined_at=NOW)
    neighbour = build.account()
    Membership.objects.create(account=neighbour, user=shared, role=Role.OWNER, joined_at=NOW)
    build.subscription(account=neighbour, plan=plan, status="active", current_period_end=NOW, stripe_id="sub_other")
    request = DeletionRequest.objects.create(
        account=account, account_name=account.name, requested_by=owner, requested_at=NOW - timedelta(days=30)
    )
    return request, account, neighbour, conversion


def test_it_deletes_an_organization_after_the_grace_period_and_tells_it(leaving, stripe_api, outbox, settings):
    request, account, neighbour, conversion = leaving

    summary = run("process_account_deletions", "--as-of", NOW.isoformat())

    # Stripe: the live subscription is cancelled; the one Stripe had ended is left as it is.
    assert stripe_api.cancelled == ["sub_live"]
    assert {auth for _, _, auth in stripe_api.requests} == {"Bearer sk_test_local"}
    assert not Account.objects.filter(pk=account.pk).exists()
    for model in (Subscription, CreditBalance, Invitation, PushSubscription, ErrorLog, License, Membership):
        assert not model.objects.exclude(account=neighbour).exists(), model
    assert SubscriptionNotice.objects.count() == LicenseWarning.objects.count() == 0
    conversion.refresh_from_db()
    assert (conversion.account_id, conversion.commission) == (None, Decimal("25.00"))
    # The owner's login is gone; the member who also works for the neighbour keeps hers.
    assert list(User.objects.values_list("username", flat=True)) == ["shared"]
    assert Membership.objects.get().account == neighbour
    assert Subscription.objects.get().stripe_id == "sub_other"

    request.refresh_from_db()
    assert (request.status, request.completed_at, request.stripe_cancelled_at) == ("completed", NOW, NOW)
    assert request.account_name == "Account 1" and request.account_id is None
    assert request.outcome["stripe_subscriptions_cancelled"] == 1
    assert request.outcome["users_deleted"] == 1
    assert request.outcome["rows_anonymised"] == {"accounts.AffiliateConversion": 1}
    assert request.outcome["rows_deleted"]["accounts.Subscription"] == 2
    assert request.outcome["rows_deleted"]["accounts.Account"] == 1
    assert summary == {
        "requests_due": 1,
        "requests_completed": 1,
        "requests_failed": 0,
        "stripe_subscriptions_cancelled": 1,
        "rows_deleted": sum(request.outcome["rows_deleted"].values()),
        "rows_anonymised": 1,
        "users_deleted": 1,
        "notices_queued": 2,
    }

    drain()
    assert sorted(message.to[0] for message in outbox) == ["account1@example.com", "owner@example.com"]
    assert {message.subject for message in outbox} == {"Your organization Account 1 has been deleted"}
    assert "As requested on Jan. 30, 2025" in outbox[0].body

    again = run("process_account_deletions", "--as-of", (NOW + timedelta(minutes=30)).isoformat())
    assert (again["requests_due"], again["notices_queued"]) == (0, 0)
    assert stripe_api.cancelled == ["sub_live"]


def test_it_leaves_a_request_cancelled_within_the_grace_period_alone(leaving, stripe_api, outbox):
    request, account, _, _ = leaving
    DeletionRequest.objects.filter(pk=request.pk).update(status="cancelled", cancelled_at=NOW - timedelta(days=20))

    summary = run("process_account_deletions", "--as-of", (NOW + timedelta(days=30)).isoformat())

    assert summary["requests_due"] == 0
    request.refresh_from_db()
    assert (request.status, request.completed_at, request.outcome) == ("cancelled", None, {})
    assert Account.objects.filter(pk=account.pk).exists() and User.objects.count() == 2
    assert stripe_api.requests == []
    drain()
    assert outbox == []


def test_it_waits_for_the_grace_period_which_a_setting_shortens(leaving, stripe_api, settings):
    request, account, _, _ = leaving
    early = NOW - timedelta(minutes=1)

    assert run("process_account_deletions", "--as-of", early.isoformat())["requests_due"] == 0
    request.refresh_from_db()
    assert (request.status, request.started_at) == ("pending", None)
    assert Account.objects.filter(pk=account.pk).exists() and stripe_api.requests == []

    settings.ACCOUNTS_DELETION_GRACE_DAYS = 7
    assert run("process_account_deletions", "--as-of", early.isoformat())["requests_completed"] == 1


def test_it_resumes_after_a_crash_without_a_second_cancel_or_e_mail(leaving, stripe_api, outbox):
    request, account, _, _ = leaving

    # The worker dies as it deletes the account row: Stripe is done, the erasure rolls back.
    with pytest.raises(WorkerKilled), killed_at("DELETE", 1, table="accounts_account"):
        run("process_account_deletions", "--as-of", NOW.isoformat())
    request.refresh_from_db()
    assert (request.status, request.stripe_cancelled_at, request.completed_at) == ("in_progress", NOW, None)
    assert Account.objects.filter(pk=account.pk).exists() and User.objects.count() == 2
    drain()
    assert outbox == []
    stripe_calls = len(stripe_api.requests)

    later = NOW + timedelta(minutes=30)
    summary = run("process_account_deletions", "--as-of", later.isoformat())

    assert (summary["requests_completed"], summary["notices_queued"]) == (1, 2)
    assert len(stripe_api.requests) == stripe_calls  # the recorded step is not repeated
    assert not Account.objects.filter(pk=account.pk).exists()
    request.refresh_from_db()
    assert (request.status, request.completed_at, request.outcome["stripe_subscriptions_cancelled"]) == (
        "completed",
        later,
        1,
    )
    drain()
    assert len(outbox) == 2


def test_it_keeps_a_request_in_progress_while_stripe_is_down_and_finishes_it_later(leaving, stripe_api, outbox):
    request, account, _, _ = leaving
    # sub_live is cancelled; every request about sub_old then gets a 503 (the try and two retries).
    stripe_api.refuse = lambda path, query: 503 if path.endswith("sub_old") else None

    with pytest.raises(CommandError, match="1 stopped .*Stripe answered 503") as failure:
        run("process_account_deletions", "--as-of", NOW.isoformat())
    assert "sk_test_local" not in str(failure.value)
    request.refresh_from_db()
    assert (request.status, request.stripe_cancelled_at) == ("in_progress", None)
    assert "Stripe answered 503" in request.last_error
    assert stripe_api.cancelled == ["sub_live"] and Account.objects.filter(pk=account.pk).exists()

    stripe_api.refuse = None
    summary = run("process_account_deletions", "--as-of", (NOW + timedelta(minutes=30)).isoformat())

    # sub_live answers Stripe's "already canceled" 400 and counts as done; nothing is cancelled twice.
    assert stripe_api.cancelled == ["sub_live"]
    assert (summary["requests_completed"], summary["requests_failed"]) == (1, 0)
    request.refresh_from_db()
    assert (request.status, request.last_error) == ("completed", "")
    drain()
    assert len(outbox) == 2


def test_it_writes_nothing_on_a_dry_run(leaving, stripe_api, outbox):
    request, account, _, _ = leaving
    summary = run("process_account_deletions", "--as-of", NOW.isoformat(), "--dry-run")
    assert summary["requests_due"] == 1 and summary["dry_run"] is True
    request.refresh_from_db()
    assert request.status == "pending" and Account.objects.filter(pk=account.pk).exists()
    assert stripe_api.requests == []


def test_it_cancels_only_pending_requests_from_the_admin(build, admin_client):
    pending = DeletionRequest.objects.create(account=build.account(), account_name="A", requested_at=NOW)
    taken = DeletionRequest.objects.create(
        account=build.account(), account_name="B", requested_at=NOW, status="in_progress", started_at=NOW
    )

    response = admin_client.post(
        "/admin/accounts/deletionrequest/",
        {"action": "cancel", "_selected_action": [pending.pk, taken.pk]},
        follow=True,
    )

    assert "1 deletion request(s) cancelled." in response.content.decode()
    pending.refresh_from_db()
    taken.refresh_from_db()
    assert (pending.status, pending.cancelled_at is not None) == ("cancelled", True)
    assert (taken.status, taken.cancelled_at) == ("in_progress", None)


def test_it_fails_the_run_without_a_stripe_key_while_the_account_has_stripe_subscriptions(leaving, settings):
    request, account, _, _ = leaving
    settings.ACCOUNTS_STRIPE_API_KEY = ""

    with pytest.raises(
        CommandError, match="2 Stripe subscription\\(s\\) to cancel and ACCOUNTS_STRIPE_API_KEY is empty"
    ):
        run("process_account_deletions", "--as-of", NOW.isoformat())

    request.refresh_from_db()
    assert (request.status, request.stripe_cancelled_at) == ("in_progress", None)
    assert "ACCOUNTS_STRIPE_API_KEY is empty" in request.last_error
    assert Account.objects.filter(pk=account.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_it_completes_a_request_once_when_two_runs_race(leaving, stripe_api, outbox):
    request, account, _, _ = leaving
    start = threading.Barrier(2)
    summaries, errors = [], []

    def one_run() -> None:
        try:
            start.wait(timeout=10)
            summaries.append(
                call_command("process_account_deletions", "--as-of", NOW.isoformat(), stdout=io.StringIO())
            )
        except Exception as exc:  # reported below: a thread's exception would vanish
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sum(s["requests_completed"] for s in summaries) == 1
    assert stripe_api.cancelled == ["sub_live"]
    request.refresh_from_db()
    assert request.status == "completed" and not Account.objects.filter(pk=account.pk).exists()
    drain()
    assert sorted(message.to[0] for message in outbox) == ["account1@example.com", "owner@example.com"]
