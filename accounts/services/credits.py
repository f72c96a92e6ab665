"""check-low-credits-alerts: tell each account that fell below its credit threshold, once per crossing.

One transaction:
1. balances flagged before and now back at or above their threshold are cleared (the next
   fall is a new crossing);
2. unflagged balances below their threshold are flagged, stamped ``below_since = now``;
3. each account flagged in step 2 gets one e-mail, and the administrators one summary through
   the admin notification helper (running out of credit stops a customer's work).
A re-run finds nothing to flag and queues nothing.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F

from notifications.alerts.admins import admins_notify
from notifications.services import notifications_enqueue_many

from ..languages import messages_localized
from ..links import site_link
from ..models import CreditBalance


@transaction.atomic
def low_credits_check(*, now: datetime, dry_run: bool = False) -> dict:
    recovered = CreditBalance.objects.filter(below_threshold=True, balance__gte=F("threshold"))
    crossed = CreditBalance.objects.filter(below_threshold=False, balance__lt=F("threshold"))
    if dry_run:
        return {
            "recovered": recovered.count(),
            "crossed": crossed.count(),
            "messages_queued": 0,
            "admin_messages_queued": 0,
        }
    cleared = recovered.update(below_threshold=False, below_since=None)
    flagged = crossed.update(below_threshold=True, below_since=now)
    queued = admin_queued = 0
    if flagged:
        rows = list(
            CreditBalance.objects.filter(below_threshold=True, below_since=now)
            .order_by("account_id")
            .values_list("account_id", "account__name", "account__email", "balance", "threshold")
        )
        queued = notifications_enqueue_many(messages=messages_localized((row[0], _message(row, now)) for row in rows))
        admin_queued = admins_notify(
            title=f"{flagged} account(s) fell below their credit threshold",
            lines=[f"{name}: {balance} left (threshold {threshold})" for _, name, _, balance, threshold in rows],
            dedupe_key=f"low-credits:{now.isoformat()}",
        )
    return {"recovered": cleared, "crossed": flagged, "messages_queued": queued, "admin_messages_queued": admin_queued}


def _message(row: tuple, now: datetime) -> dict:
    account_id, name, email, balance, threshold = row
    return {
        "recipient": email,
        "template": "accounts/low_credits",
        "context": {
            "account_name": name,
            "balance": str(balance),
            "threshold": str(threshold),
            "top_up_url": site_link(settings.ACCOUNTS_SUBSCRIPTION_PATH, account_id=account_id),
        },
        # One crossing is one (account, below_since) pair.
        "dedupe_key": f"low-credits:{account_id}:{now.isoformat()}",
    }
