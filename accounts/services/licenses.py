"""check-license-expiration: expire licenses past their end; warn 7, 3 and 1 days before, each once.

1. Active licenses past ``expires_at`` become expired in one UPDATE.
2. Per tier, smallest first, the active licenses expiring within that many days that have no
   warning of that tier or a smaller one are walked in batches; each batch records its
   ``LicenseWarning`` rows (unique per license and tier) and queues its e-mails in one
   transaction. A license first seen 2 days before its end gets the 3-day warning only, then
   the 1-day one: never a lesser warning after a more urgent one.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet

from core.batching import value_batches
from notifications.services import notifications_enqueue_many

from ..batching import batch_size as resolve_batch_size
from ..languages import messages_localized
from ..links import site_link
from ..models import License, LicenseWarning

Status = License.Status
FIELDS = ("key", "expires_at", "account_id", "account__name", "account__email")


def licenses_due_to_expire(now: datetime) -> QuerySet:
    return License.objects.filter(status=Status.ACTIVE, expires_at__lte=now)


def warning_candidates(*, tier: int, now: datetime) -> QuerySet:
    warned = LicenseWarning.objects.filter(license=OuterRef("pk"), tier__lte=tier)
    return License.objects.filter(
        status=Status.ACTIVE, expires_at__gt=now, expires_at__lte=now + timedelta(days=tier)
    ).exclude(Exists(warned))


def licenses_check(*, now: datetime, dry_run: bool = False, batch_size: int | None = None) -> dict:
    tiers = sorted(settings.ACCOUNTS_LICENSE_WARNING_DAYS)
    if dry_run:
        first, *rest = [warning_candidates(tier=t, now=now).order_by().values("pk") for t in tiers]
        warnings = first.union(*rest).count() if rest else first.count()
        return {"licenses_expired": licenses_due_to_expire(now).count(), "warnings": warnings, "messages_queued": 0}
    with transaction.atomic():
        expired = licenses_due_to_expire(now).update(status=Status.EXPIRED, expired_at=now)
    totals = {"licenses_expired": expired, "warnings": 0, "messages_queued": 0}
    size = resolve_batch_size(batch_size)
    for tier in tiers:
        for rows in value_batches(warning_candidates(tier=tier, now=now), *FIELDS, size=size):
            totals["warnings"] += len(rows)
            totals["messages_queued"] += _warn(rows, tier=tier, now=now)
    return totals


@transaction.atomic
def _warn(rows: list[dict], *, tier: int, now: datetime) -> int:
    warnings, messages = [], []
    for row in rows:
        key = f"license-warning:{row['pk']}:tier{tier}"
        warnings.append(LicenseWarning(license_id=row["pk"], tier=tier, dedupe_key=key, sent_at=now))
        messages.append(
            (
                row["account_id"],
                {
                    "recipient": row["account__email"],
                    "template": "accounts/license_expiring",
                    "context": {
                        "account_name": row["account__name"],
                        "key_hint": row["key"][:8],
                        "expires_at": row["expires_at"].isoformat(),
                        "days_left": max((row["expires_at"] - now).days, 0),
                        "tier": tier,
                        "renew_url": site_link(settings.ACCOUNTS_SUBSCRIPTION_PATH, account_id=row["account_id"]),
                    },
                    "dedupe_key": key,
                },
            )
        )
    LicenseWarning.objects.bulk_create(warnings, ignore_conflicts=True)
    return notifications_enqueue_many(messages=messages_localized(messages))
