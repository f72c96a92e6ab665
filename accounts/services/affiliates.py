"""approve-mature-affiliate-conversions: pending conversions past the hold period become approved."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from ..models import AffiliateConversion

Status = AffiliateConversion.Status


def conversions_mature(now: datetime) -> QuerySet:
    held_since = now - timedelta(days=settings.ACCOUNTS_AFFILIATE_HOLD_DAYS)
    return AffiliateConversion.objects.filter(status=Status.PENDING, created_at__lte=held_since)


@transaction.atomic
def conversions_approve(*, now: datetime, dry_run: bool = False) -> dict:
    """One conditional UPDATE: a conversion rejected meanwhile is no longer pending and stays so."""
    mature = conversions_mature(now)
    if dry_run:
        return {"conversions_approved": mature.count()}
    return {"conversions_approved": mature.update(status=Status.APPROVED, approved_at=now)}
