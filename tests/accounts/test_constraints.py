"""The rules the database itself enforces on the accounts tables."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from accounts.models import CreditBalance, DeletionRequest, Invitation, Membership
from tests.job_commands import at

pytestmark = pytest.mark.django_db
NOW = at("2025-03-01")


def refused(create) -> bool:
    try:
        with transaction.atomic():
            create()
    except IntegrityError:
        return True
    return False


def test_it_allows_one_owner_and_one_membership_per_user_in_an_account(build):
    account = build.account()
    alice, bob = (get_user_model().objects.create(username=name) for name in ("alice", "bob"))
    Membership.objects.create(account=account, user=alice, role="owner", joined_at=NOW)

    assert refused(lambda: Membership.objects.create(account=account, user=bob, role="owner", joined_at=NOW))
    assert refused(lambda: Membership.objects.create(account=account, user=alice, role="member", joined_at=NOW))
    Membership.objects.create(account=account, user=bob, role="admin", joined_at=NOW)
    assert sorted(account.members.values_list("username", flat=True)) == ["alice", "bob"]


def test_it_allows_one_pending_invitation_per_address_and_a_token_once(build):
    account = build.account()

    def invite(email: str, token: str, status: str = "pending"):
        return lambda: Invitation.objects.create(
            account=account, email=email, token_hash=token, status=status, created_at=NOW,
            expires_at=NOW + timedelta(days=7),
        )  # fmt: skip

    invite("a@example.com", "1" * 64)()
    assert refused(invite("a@example.com", "2" * 64))
    assert refused(invite("b@example.com", "1" * 64))
    invite("a@example.com", "3" * 64, status="revoked")()
    assert Invitation.objects.count() == 2


def test_it_refuses_a_deletion_request_both_cancelled_and_completed_and_a_second_open_one(build):
    account = build.account()
    DeletionRequest.objects.create(account=account, account_name=account.name, requested_at=NOW)

    assert refused(lambda: DeletionRequest.objects.create(account=account, account_name="x", requested_at=NOW))
    assert refused(
        lambda: DeletionRequest.objects.create(
            account=build.account(), account_name="y", requested_at=NOW, cancelled_at=NOW, completed_at=NOW
        )
    )


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "done"},
        {"status": "completed"},  # without completed_at
        {"completed_at": NOW},  # still pending
        {"status": "cancelled"},  # without cancelled_at
        {"status": "in_progress"},  # without started_at
    ],
)
def test_it_ties_a_deletion_requests_status_to_its_times(build, fields):
    account = build.account()
    assert refused(
        lambda: DeletionRequest.objects.create(account=account, account_name="x", requested_at=NOW, **fields)
    )


def test_it_refuses_a_negative_credit_threshold(build):
    account = build.account()
    assert refused(lambda: CreditBalance.objects.create(account=account, balance=Decimal("5"), threshold=Decimal("-1")))
