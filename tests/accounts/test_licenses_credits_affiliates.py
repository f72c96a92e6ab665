"""check-license-expiration, check-low-credits-alerts, approve-mature-affiliate-conversions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from itertools import count

import pytest

from accounts.models import Affiliate, AffiliateConversion, CreditBalance, License, LicenseWarning
from tests.job_commands import WorkerKilled, at, killed_at, queued, run

pytestmark = pytest.mark.django_db
NOW = at("2025-03-01", 8)
D = Decimal


NUMBERS = count(1)


def license_for(account, *, ends) -> License:
    return License.objects.create(account=account, key=f"KEY{next(NUMBERS):04d}-abcdef", expires_at=NOW + ends)


def test_it_expires_licenses_and_warns_7_3_and_1_days_before_each_once(build, settings):
    settings.SITE_URL = "https://app.example.com"
    account = build.account()
    lic = license_for(account, ends=timedelta(days=8))
    gone = license_for(account, ends=-timedelta(minutes=1))

    days = [0, 1, 2, 5, 6, 7, 7]  # a run each morning (the last one twice)
    summaries = [run("check_license_expiration", "--as-of", (NOW + timedelta(days=d)).isoformat()) for d in days]

    assert [s["warnings"] for s in summaries] == [0, 1, 0, 1, 0, 1, 0]
    assert [s["licenses_expired"] for s in summaries] == [1, 0, 0, 0, 0, 0, 0]
    assert sorted(LicenseWarning.objects.values_list("license_id", "tier")) == [(lic.pk, 1), (lic.pk, 3), (lic.pk, 7)]
    messages = queued("accounts/license_expiring")
    assert [m.context["tier"] for m in messages] == [7, 3, 1]
    assert {m.recipient for m in messages} == {account.email}
    assert messages[0].context["renew_url"] == f"https://app.example.com/account/{account.pk}/subscription/"
    gone.refresh_from_db()
    assert (gone.status, gone.expired_at) == ("expired", NOW)
    lic.refresh_from_db()
    assert lic.status == "active"


def test_it_sends_only_the_most_urgent_warning_to_a_license_first_seen_late(build):
    license_for(build.account(), ends=timedelta(days=2))
    summary = run("check_license_expiration", "--as-of", NOW.isoformat())
    assert (summary["warnings"], summary["messages_queued"]) == (1, 1)
    assert list(LicenseWarning.objects.values_list("tier", flat=True)) == [3]


def test_it_keeps_whole_warning_batches_when_a_run_dies_part_way(build):
    accounts = [build.account() for _ in range(5)]
    for account in accounts:
        license_for(account, ends=timedelta(days=5))

    # Batches of two: the second batch's notices INSERT dies; the first batch stays whole.
    with pytest.raises(WorkerKilled), killed_at("INSERT", 2, table="accounts_licensewarning"):
        run("check_license_expiration", "--as-of", NOW.isoformat(), "--batch-size", "2")
    assert LicenseWarning.objects.count() == 2 and len(queued()) == 2

    summary = run("check_license_expiration", "--as-of", NOW.isoformat(), "--batch-size", "2")
    assert (summary["warnings"], summary["messages_queued"]) == (3, 3)
    assert sorted(m.recipient for m in queued()) == sorted(a.email for a in accounts)
    assert run("check_license_expiration", "--as-of", NOW.isoformat())["warnings"] == 0


def test_it_writes_nothing_for_licenses_on_a_dry_run(build):
    license_for(build.account(), ends=timedelta(days=1))
    license_for(build.account(), ends=-timedelta(days=1))
    summary = run("check_license_expiration", "--as-of", NOW.isoformat(), "--dry-run")
    assert (summary["licenses_expired"], summary["warnings"]) == (1, 1)
    assert set(License.objects.values_list("status", flat=True)) == {"active"}
    assert LicenseWarning.objects.count() == 0 and queued() == []


def credit(account, balance: str, threshold: str = "50.00") -> CreditBalance:
    return CreditBalance.objects.create(account=account, balance=D(balance), threshold=D(threshold))


def test_it_alerts_an_account_once_per_crossing_of_its_credit_threshold(build, settings):
    settings.ADMINS = [("Ops", "ops@example.com")]
    low, fine = build.account(), build.account()
    low_balance = credit(low, "49.99")
    credit(fine, "50.00")

    first = run("check_low_credits_alerts", "--as-of", NOW.isoformat())
    again = run("check_low_credits_alerts", "--as-of", (NOW + timedelta(hours=6)).isoformat())
    assert first == {"recovered": 0, "crossed": 1, "messages_queued": 1, "admin_messages_queued": 1}
    assert again == {"recovered": 0, "crossed": 0, "messages_queued": 0, "admin_messages_queued": 0}
    assert [m.recipient for m in queued("accounts/low_credits")] == [low.email]
    [admin_mail] = queued("notifications/admin_alert")
    assert admin_mail.recipient == "ops@example.com"
    assert admin_mail.context["lines"] == [f"{low.name}: 49.99 left (threshold 50.00)"]

    # Topped up, then spent again: a new crossing, a new e-mail.
    CreditBalance.objects.filter(pk=low_balance.pk).update(balance=D("80.00"))
    assert run("check_low_credits_alerts", "--as-of", (NOW + timedelta(hours=12)).isoformat())["recovered"] == 1
    CreditBalance.objects.filter(pk=low_balance.pk).update(balance=D("10.00"))
    assert run("check_low_credits_alerts", "--as-of", (NOW + timedelta(hours=18)).isoformat())["crossed"] == 1
    assert [m.recipient for m in queued("accounts/low_credits")] == [low.email, low.email]
    low_balance.refresh_from_db()
    assert (low_balance.below_threshold, low_balance.below_since) == (True, NOW + timedelta(hours=18))


def test_it_renders_the_account_job_messages(build, settings):
    from notifications.email.rendering import message_render

    settings.ADMINS = [("Ops", "ops@example.com")]
    credit(build.account(), "1.00")
    license_for(build.account(), ends=timedelta(days=1))
    run("check_low_credits_alerts", "--as-of", NOW.isoformat())
    run("check_license_expiration", "--as-of", NOW.isoformat())
    templates = set()
    for message in queued():
        subject, text, html = message_render(message)
        assert subject and "{{" not in text and html, message.template
        templates.add(message.template)
    assert templates == {"accounts/low_credits", "notifications/admin_alert", "accounts/license_expiring"}


def test_it_approves_conversions_past_the_hold_period_once(build, settings):
    settings.ACCOUNTS_AFFILIATE_HOLD_DAYS = 30
    affiliate = Affiliate.objects.create(name="Partner", email="p@example.com", code="partner", created_at=NOW)

    def conversion(age_days: float, status: str = "pending") -> AffiliateConversion:
        return AffiliateConversion.objects.create(
            affiliate=affiliate,
            commission=D("20.00"),
            status=status,
            created_at=NOW - timedelta(days=age_days),
            approved_at=NOW if status == "approved" else None,
        )

    mature, exactly = conversion(31), conversion(30)
    young, rejected = conversion(29.9), conversion(60, status="rejected")

    assert run("approve_mature_affiliate_conversions", "--as-of", NOW.isoformat(), "--dry-run") == {
        "conversions_approved": 2,
        "dry_run": True,
    }
    assert run("approve_mature_affiliate_conversions", "--as-of", NOW.isoformat()) == {"conversions_approved": 2}
    assert run("approve_mature_affiliate_conversions", "--as-of", NOW.isoformat()) == {"conversions_approved": 0}
    statuses = dict(AffiliateConversion.objects.values_list("pk", "status"))
    assert statuses == {mature.pk: "approved", exactly.pk: "approved", young.pk: "pending", rejected.pk: "rejected"}
    assert AffiliateConversion.objects.get(pk=mature.pk).approved_at == NOW
