"""cleanup-invitations, cleanup-push-subscriptions, purge-error-logs: exact rows, re-runs, dry runs."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from itertools import count

import pytest

from accounts.models import ErrorLog, Invitation, PushSubscription
from tests.job_commands import WorkerKilled, at, killed_at, run

pytestmark = pytest.mark.django_db
NOW = at("2025-03-01", 3)


NUMBERS = count(1)


def invitation(account, *, expires, status="pending") -> Invitation:
    n = next(NUMBERS)
    return Invitation.objects.create(
        account=account,
        email=f"i{n}@example.com",
        token_hash=hashlib.sha256(str(n).encode()).hexdigest(),
        status=status,
        created_at=NOW - timedelta(days=30),
        expires_at=expires,
        accepted_at=NOW - timedelta(days=1) if status == "accepted" else None,
    )


def test_it_deletes_expired_pending_invitations_only_once(build):
    account = build.account()
    expired = invitation(account, expires=NOW - timedelta(seconds=1))
    at_expiry = invitation(account, expires=NOW)
    valid = invitation(account, expires=NOW + timedelta(days=1))
    accepted = invitation(account, expires=NOW - timedelta(days=2), status="accepted")

    assert run("cleanup_invitations", "--as-of", NOW.isoformat(), "--dry-run")["invitations_deleted"] == 2
    assert Invitation.objects.count() == 4
    assert run("cleanup_invitations", "--as-of", NOW.isoformat()) == {"invitations_deleted": 2}
    assert run("cleanup_invitations", "--as-of", NOW.isoformat()) == {"invitations_deleted": 0}
    assert set(Invitation.objects.values_list("pk", flat=True)) == {valid.pk, accepted.pk}
    assert not Invitation.objects.filter(pk__in=[expired.pk, at_expiry.pk]).exists()


def test_it_removes_expired_and_long_unused_push_subscriptions(build, settings):
    settings.ACCOUNTS_PUSH_UNUSED_DAYS = 90
    account = build.account()

    def push(name, *, created_days, used_days=None, expires=None) -> PushSubscription:
        return PushSubscription.objects.create(
            account=account,
            endpoint=f"https://push.example.com/{name}",
            created_at=NOW - timedelta(days=created_days),
            last_used_at=None if used_days is None else NOW - timedelta(days=used_days),
            expires_at=expires,
        )

    push("expired", created_days=10, used_days=1, expires=NOW - timedelta(hours=1))
    push("unused-91", created_days=200, used_days=91)
    push("never-used-old", created_days=95)
    kept = [
        push("used-89", created_days=200, used_days=89),
        push("never-used-new", created_days=30),
        push("expires-later", created_days=10, used_days=1, expires=NOW + timedelta(days=1)),
    ]

    assert run("cleanup_push_subscriptions", "--as-of", NOW.isoformat()) == {"expired_deleted": 1, "unused_deleted": 2}
    again = run("cleanup_push_subscriptions", "--as-of", NOW.isoformat())
    assert again == {"expired_deleted": 0, "unused_deleted": 0}
    assert set(PushSubscription.objects.values_list("pk", flat=True)) == {p.pk for p in kept}


def test_it_purges_error_logs_past_retention_in_batches_and_keeps_what_a_crash_committed(build, settings):
    settings.ACCOUNTS_ERROR_LOG_RETENTION_DAYS = 30
    ErrorLog.objects.bulk_create(
        ErrorLog(created_at=NOW - timedelta(days=age), message=f"{age} days old") for age in [31, 32, 33, 34, 35, 30, 1]
    )

    with pytest.raises(WorkerKilled), killed_at("DELETE", 2):
        run("purge_error_logs", "--as-of", NOW.isoformat(), "--batch-size", "2")
    # The first batch of two committed; the second rolled back whole.
    assert ErrorLog.objects.count() == 5

    assert run("purge_error_logs", "--as-of", NOW.isoformat(), "--batch-size", "2") == {"error_logs_deleted": 3}
    assert run("purge_error_logs", "--as-of", NOW.isoformat()) == {"error_logs_deleted": 0}
    assert sorted(ErrorLog.objects.values_list("message", flat=True)) == ["1 days old", "30 days old"]
