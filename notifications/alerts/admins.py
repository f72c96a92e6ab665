"""The admin notification helper: an e-mail to the administrators about a critical event.

Domain apps call ``admins_notify`` for events a person must act on (accounts out of credit,
a provider refusing its key). Recipients: Django's ``ADMINS`` (set from the ``ADMINS`` variable),
else the job-alert recipients (``JOBS_ALERT_RECIPIENTS``, else the active superusers with an
e-mail address). Queued through the durable notification queue like every other e-mail, so it
is sent after the caller commits and rolled back with it.
"""

from __future__ import annotations

import logging

from django.conf import settings

from jobs.operations.health import alert_recipients
from notifications.services import notifications_enqueue_many

logger = logging.getLogger(__name__)
TEMPLATE = "notifications/admin_alert"


def admin_recipients() -> list[str]:
    admins = [entry[1] if isinstance(entry, (list, tuple)) else entry for entry in settings.ADMINS]
    return admins or alert_recipients()[0]


def admins_notify(*, title: str, lines: list[str], dedupe_key: str, link: str = "") -> int:
    """Queue one e-mail per administrator; returns how many were new (the key makes a repeat
    harmless). ``lines`` are the facts, one per line; ``link`` an absolute URL to act on them."""
    recipients = admin_recipients()
    if not recipients:
        logger.warning("admin notification %r not sent: no ADMINS, JOBS_ALERT_RECIPIENTS or superuser e-mail", title)
        return 0
    context = {"title": title, "lines": list(lines), "link": link}
    return notifications_enqueue_many(
        messages=[
            {"recipient": r, "template": TEMPLATE, "context": context, "dedupe_key": f"admin:{dedupe_key}:{r}"[:200]}
            for r in recipients
        ]
    )
