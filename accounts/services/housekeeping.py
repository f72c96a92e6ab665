"""Clean-up jobs: cleanup-invitations, cleanup-push-subscriptions, purge-error-logs."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet

from core.batching import delete_in_batches

from ..batching import batch_size as resolve_batch_size
from ..models import ErrorLog, Invitation, PushSubscription


def invitations_expired(now: datetime) -> QuerySet:
    return Invitation.objects.filter(status=Invitation.Status.PENDING, expires_at__lte=now)


@transaction.atomic
def invitations_cleanup(*, now: datetime, dry_run: bool = False) -> dict:
    """Pending invitations past their expiry are deleted (their token can never be used)."""
    expired = invitations_expired(now)
    if dry_run:
        return {"invitations_deleted": expired.count()}
    return {"invitations_deleted": expired.delete()[0]}


def push_subscriptions_stale(now: datetime) -> tuple[QuerySet, QuerySet]:
    """(expired, unused past ACCOUNTS_PUSH_UNUSED_DAYS and not expired); never-used ones count
    from their creation."""
    cutoff = now - timedelta(days=settings.ACCOUNTS_PUSH_UNUSED_DAYS)
    expired = Q(expires_at__lte=now)
    unused = Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, created_at__lt=cutoff)
    return PushSubscription.objects.filter(expired), PushSubscription.objects.filter(unused).exclude(expired)


@transaction.atomic
def push_subscriptions_cleanup(*, now: datetime, dry_run: bool = False) -> dict:
    expired, unused = push_subscriptions_stale(now)
    if dry_run:
        return {"expired_deleted": expired.count(), "unused_deleted": unused.count()}
    # Unused first: the expired filter does not depend on what the other delete removed.
    unused_deleted = unused.delete()[0]
    return {"expired_deleted": expired.delete()[0], "unused_deleted": unused_deleted}


def error_logs_old(now: datetime) -> QuerySet:
    return ErrorLog.objects.filter(created_at__lt=now - timedelta(days=settings.ACCOUNTS_ERROR_LOG_RETENTION_DAYS))


def error_logs_purge(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> dict:
    """Error-log rows older than ACCOUNTS_ERROR_LOG_RETENTION_DAYS, in batches (a big table
    must not hold one long delete)."""
    old = error_logs_old(now)
    if dry_run:
        return {"error_logs_deleted": old.count()}
    return {"error_logs_deleted": delete_in_batches(old, size=resolve_batch_size(batch_size))}
