"""process-account-deletions: the GDPR deletion queue.

A deletion request is carried out ``ACCOUNTS_DELETION_GRACE_DAYS`` after it was made, unless it
was cancelled within them. Each step is recorded on the request, so a run that dies part-way is
resumed by the next one without repeating what was done:

1. Claim: pending requests past the grace period become ``in_progress`` in one conditional
   UPDATE (a request cancelled meanwhile is no longer pending and is not taken). Requests a
   run left in progress are taken up again.
2. Stripe: each Stripe subscription of the account is cancelled (``DELETE
   /v1/subscriptions/{id}``); one Stripe has already ended, or no longer has, counts as done.
   ``stripe_cancelled_at`` records the step.
3. One transaction, with the request row locked: the "organization deleted" notice is queued
   (one dedupe key per request and recipient), the account's rows are deleted, the logins of
   its members who belong to no other organization are deleted, affiliate conversions keep
   their commission without the account, the account goes, and the request is completed with
   the counts in ``outcome``. A crash inside rolls all of it back and the next run does it again.

A request that cannot go on (Stripe down, no Stripe key while the account has Stripe
subscriptions) keeps its progress and says why in ``last_error``; the others go on.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import stripe
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Exists, OuterRef, Q

from core.http_guard import DestinationRefused
from notifications.services import notifications_enqueue_many

from ..languages import messages_localized
from ..models import (
    Account,
    AffiliateConversion,
    Catalog,
    DeletionRequest,
    ErrorLog,
    License,
    Membership,
    Subscription,
    SubscriptionNotice,
)
from ..stripe_api import stripe_client, stripe_error_text

Status = DeletionRequest.Status
TOTALS = (
    "requests_completed",
    "requests_failed",
    "stripe_subscriptions_cancelled",
    "rows_deleted",
    "rows_anonymised",
    "users_deleted",
    "notices_queued",
)


class DeletionStopped(Exception):
    """A step could not be done; the request stays in progress for the next run."""


def deletions_due(now: datetime):
    cutoff = now - timedelta(days=settings.ACCOUNTS_DELETION_GRACE_DAYS)
    return DeletionRequest.objects.filter(
        Q(status=Status.PENDING, requested_at__lte=cutoff) | Q(status=Status.IN_PROGRESS)
    )


@transaction.atomic
def deletion_requests_cancel(*, ids: list[int], now: datetime) -> int:
    """Cancel pending requests (the customer changed their mind); one the job has taken up is
    past cancelling. Returns how many were cancelled."""
    return DeletionRequest.objects.filter(pk__in=ids, status=Status.PENDING).update(
        status=Status.CANCELLED, cancelled_at=now
    )


def account_deletions_process(*, now: datetime, dry_run: bool = False) -> tuple[dict, list[str]]:
    """Returns the run's summary and one message per request that could not be completed."""
    totals = dict.fromkeys(TOTALS, 0)
    if dry_run:
        return {"requests_due": deletions_due(now).count(), **totals}, []
    deletions_due(now).filter(status=Status.PENDING).update(status=Status.IN_PROGRESS, started_at=now)
    requests = list(DeletionRequest.objects.filter(status=Status.IN_PROGRESS).order_by("requested_at", "pk"))
    failures = []
    for request in requests:
        try:
            outcome = deletion_request_carry_out(request=request, now=now)
        except DeletionStopped as exc:
            DeletionRequest.objects.filter(pk=request.pk, status=Status.IN_PROGRESS).update(last_error=str(exc))
            totals["requests_failed"] += 1
            failures.append(f"{request.account_name} (request {request.pk}): {exc}")
            continue
        if outcome is not None:
            totals["requests_completed"] += 1
            _add(totals, outcome)
    return {"requests_due": len(requests), **totals}, failures


def deletion_request_carry_out(*, request: DeletionRequest, now: datetime) -> dict | None:
    """Steps 2 and 3 for one request in progress; None when another run completed it first."""
    if request.stripe_cancelled_at is None:
        cancelled = stripe_subscriptions_cancel(account_id=request.account_id)
        outcome = {**request.outcome, "stripe_subscriptions_cancelled": cancelled}
        DeletionRequest.objects.filter(pk=request.pk, stripe_cancelled_at__isnull=True).update(
            stripe_cancelled_at=now, outcome=outcome
        )
    return account_erase(request_id=request.pk, now=now)


def stripe_subscriptions_cancel(*, account_id: int | None) -> int:
    """Cancels the account's Stripe subscriptions now; returns how many Stripe still had running."""
    ids = list(
        Subscription.objects.filter(account_id=account_id, stripe_id__isnull=False)
        .order_by("pk")
        .values_list("stripe_id", flat=True)
    )
    if not ids:
        return 0
    try:
        client = stripe_client()
        return sum(_stripe_cancel(client, stripe_id) for stripe_id in ids)
    except ImproperlyConfigured:
        raise DeletionStopped(f"{len(ids)} Stripe subscription(s) to cancel and ACCOUNTS_STRIPE_API_KEY is empty.")
    except DestinationRefused as exc:
        raise DeletionStopped(f"ACCOUNTS_STRIPE_API_BASE is not allowed: {exc}")
    except stripe.StripeError as exc:
        raise DeletionStopped(stripe_error_text(exc))


def _stripe_cancel(client: stripe.StripeClient, stripe_id: str) -> bool:
    """True when this call ended the subscription; False when Stripe had ended it or has none."""
    try:
        client.v1.subscriptions.cancel(stripe_id)
        return True
    except stripe.InvalidRequestError as exc:
        if exc.http_status == 404:
            return False
        # Stripe refuses to cancel a subscription twice: a resumed request meets the one it ended.
        if client.v1.subscriptions.retrieve(stripe_id).status == "canceled":
            return False
        raise


@transaction.atomic
def account_erase(*, request_id: int, now: datetime) -> dict | None:
    """Step 3, all or nothing. The lock makes a concurrent run wait, then find it completed."""
    request = DeletionRequest.objects.select_for_update().filter(pk=request_id, status=Status.IN_PROGRESS).first()
    if request is None:
        return None
    account = Account.objects.filter(pk=request.account_id).first()
    outcome = {**request.outcome, **_account_rows_delete(account, request=request, now=now)}
    request.status, request.completed_at, request.outcome, request.last_error = Status.COMPLETED, now, outcome, ""
    request.save(update_fields=["status", "completed_at", "outcome", "last_error"])
    return outcome


def _account_rows_delete(account: Account | None, *, request: DeletionRequest, now: datetime) -> dict:
    if account is None:  # deleted by other means: nothing left to erase or to tell
        return {"rows_deleted": {}, "rows_anonymised": {}, "users_deleted": 0, "notices_queued": 0}
    notices = notifications_enqueue_many(messages=messages_localized(_notices(account, request=request, now=now)))
    # The affiliate's commission stays owed; only the link to the customer goes.
    anonymised = AffiliateConversion.objects.filter(account=account).update(account=None)
    deleted: dict[str, int] = {}
    # PROTECT relations first (a subscription's notices before the subscription), then the
    # members' logins while the memberships still say whose they are, then the account with its
    # CASCADE relations (memberships, invitations, push subscriptions, credit balance).
    for rows in (
        SubscriptionNotice.objects.filter(subscription__account=account),
        Subscription.objects.filter(account=account),
        Catalog.objects.filter(account=account),
        License.objects.filter(account=account),
        ErrorLog.objects.filter(account=account),  # its messages may name people
        _logins_only_here(account),
        Account.objects.filter(pk=account.pk),
    ):
        for label, count in rows.delete()[1].items():
            deleted[label] = deleted.get(label, 0) + count
    users = deleted.pop(get_user_model()._meta.label, 0)
    return {
        "rows_deleted": {label: count for label, count in deleted.items() if count},
        "rows_anonymised": {AffiliateConversion._meta.label: anonymised} if anonymised else {},
        "users_deleted": users,
        "notices_queued": notices,
    }


def _logins_only_here(account: Account):
    """Members with no other organization. Staff keep their login: it is the operators' own."""
    elsewhere = Membership.objects.filter(user=OuterRef("pk")).exclude(account=account)
    return (
        get_user_model()
        .objects.filter(account_memberships__account=account, is_staff=False, is_superuser=False)
        .exclude(Exists(elsewhere))
    )


def _notices(account: Account, *, request: DeletionRequest, now: datetime) -> list[tuple[int, dict]]:
    recipients = [account.email]
    if request.requested_by is not None and request.requested_by.email:
        recipients.append(request.requested_by.email)
    context = {
        "account_name": account.name,
        "requested_on": request.requested_at.date().isoformat(),
        "deleted_on": now.date().isoformat(),
    }
    return [
        (
            account.pk,
            {
                "recipient": email,
                "template": "accounts/account_deleted",
                "context": context,
                "dedupe_key": f"account-deleted:{request.pk}:{email}"[:200],
            },
        )
        for email in dict.fromkeys(recipients)
    ]


def _add(totals: dict, outcome: dict) -> None:
    totals["stripe_subscriptions_cancelled"] += outcome.get("stripe_subscriptions_cancelled", 0)
    totals["rows_deleted"] += sum(outcome["rows_deleted"].values())
    totals["rows_anonymised"] += sum(outcome["rows_anonymised"].values())
    totals["users_deleted"] += outcome["users_deleted"]
    totals["notices_queued"] += outcome["notices_queued"]
