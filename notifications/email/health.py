"""The mail server as the drains last found it: recorded by process-notifications, read by /health/
and the dashboard (``jobs.operations.health`` calls ``mail_health`` through ``health_check_register``).

/health/ never opens an SMTP connection: a probe every few seconds would be a second sender, and
the drain, which runs every 30 s, already finds out. A mail outage makes the ``mail`` component
degraded from the first drain that could not use the server until the next one that sent.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import F
from django.db.models.functions import Coalesce

from core.formatting import format_datetime
from notifications.models import MailServerState

ROW = "default"


def mail_failure_record(*, now: datetime, deferred: int, error: str) -> None:
    """A drain could not use the mail server: the outage starts (or goes on) now."""
    updated = MailServerState.objects.filter(pk=ROW).update(
        failing_since=Coalesce(F("failing_since"), now), last_failure_at=now, deferred=deferred, last_error=error
    )
    if not updated:
        MailServerState.objects.get_or_create(
            pk=ROW, defaults={"failing_since": now, "last_failure_at": now, "deferred": deferred, "last_error": error}
        )


def mail_success_record(*, now: datetime) -> None:
    """A drain sent mail: any outage is over. One UPDATE that matches no row while all is well."""
    MailServerState.objects.filter(pk=ROW, failing_since__isnull=False).update(
        failing_since=None, deferred=0, last_error="", recovered_at=now
    )


def mail_health(now: datetime) -> dict:
    """/health/'s ``mail`` component: degraded while an outage is recorded. Times and counts only."""
    state = MailServerState.objects.filter(pk=ROW, failing_since__isnull=False).first()
    if state is None:
        return {"ok": True, "degraded": False}
    return {
        "ok": True,
        "degraded": True,
        "failing_since": state.failing_since.isoformat(),
        "last_failure_at": state.last_failure_at.isoformat(),
        "deferred": state.deferred,
    }


def mail_health_text(result: dict) -> str:
    """The dashboard's line for the ``mail`` component."""
    if not result.get("degraded"):
        return "sending"
    since = format_datetime(datetime.fromisoformat(result["failing_since"]))
    return f"unreachable or refusing since {since}; {result['deferred']} message(s) deferred at the last try"
