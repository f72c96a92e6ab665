"""Many jobs late at once: one summary per destination instead of one message per job.

After downtime (beat or the database away for an hour) the first check finds every job that
missed a slot, and one late alert per job would be thousands of messages, then as many
"no longer late" ones when beat catches up. When one check (``jobs.signals.lateness_changed``)
opens at least NOTIFICATIONS_LATE_SUMMARY_AFTER late episodes of jobs that alert, each
destination gets one summary instead: every channel routed to any of them one message naming
its jobs, the default recipients one e-mail naming the unrouted ones. The same holds for the
episodes a check closes. Below the threshold each job alerts on its own (``operations``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime

from django.conf import settings
from django.db import transaction

from jobs.models import Job
from jobs.operations.health import alert_recipients
from jobs.operations.logs import system_log
from notifications.alerts.operations import job_lateness_alert
from notifications.channels.delivery import alert_deliveries_record
from notifications.channels.messages import DIGEST_LINES, Alert
from notifications.channels.routing import ROUTING_CHUNK, alert_channels_for_many
from notifications.services import notifications_enqueue_many

logger = logging.getLogger(__name__)
TEMPLATES = {
    "late_summary": "job_alerts/late_summary",
    "late_summary_ended": "job_alerts/late_summary_ended",
}
Changes = list[tuple[Job, datetime]]


def on_lateness_changed(sender, started: Changes, ended: Changes, now: datetime, **kwargs) -> None:
    """Signal receiver (one per check). Errors are logged, never raised into jobs."""
    for changes, late in ((started, True), (ended, False)):
        try:
            lateness_alerts(changes=changes, late=late, now=now)
        except Exception:
            logger.exception("%s alerts of %s job(s) failed", "late" if late else "no longer late", len(changes))


def lateness_alerts(*, changes: Changes, late: bool, now: datetime) -> int:
    """One alert per job, or one summary per destination when the check changed many: how many
    messages were queued."""
    alerting = [(job, slot) for job, slot in changes if job.notify_on_failure]
    if len(alerting) < settings.NOTIFICATIONS_LATE_SUMMARY_AFTER:
        return sum(job_lateness_alert(job=job, late=late, slot=slot, now=now) for job, slot in alerting)
    alerting = _not_paused(alerting)
    return late_summary_send(changes=alerting, late=late, now=now) if alerting else 0


def _not_paused(changes: Changes) -> Changes:
    """Read now, a thousand ids a query: a job paused since the check says nothing."""
    ids = [job.pk for job, _ in changes]
    enabled = set()
    for start in range(0, len(ids), ROUTING_CHUNK):
        chunk = ids[start : start + ROUTING_CHUNK]
        enabled |= set(Job.objects.filter(pk__in=chunk, enabled=True).values_list("pk", flat=True))
    return [(job, slot) for job, slot in changes if job.pk in enabled]


def summary_context(changes: Changes, now: datetime) -> dict:
    """What every kind of message of one summary says: how many jobs, the first ``DIGEST_LINES``
    by name and slot (oldest slot first), how many more."""
    ordered = sorted(changes, key=lambda change: (change[1], change[0].name))
    return {
        "count": len(changes),
        "jobs": [{"name": job.name, "slot": f"{slot:%Y-%m-%d %H:%M}"} for job, slot in ordered[:DIGEST_LINES]],
        "more": max(len(changes) - DIGEST_LINES, 0),
        "now": f"{now:%Y-%m-%d %H:%M}",
    }


@transaction.atomic
def late_summary_send(*, changes: Changes, late: bool, now: datetime) -> int:
    """Record one summary on each channel routed to any of the jobs, and e-mail one to each default
    recipient about the unrouted ones; how many messages were new (a repeated check: none)."""
    kind = "late_summary" if late else "late_summary_ended"
    routing = alert_channels_for_many([job for job, _ in changes])
    channels, per_channel, unrouted = {}, defaultdict(list), []
    for job, slot in changes:
        if not routing[job.pk]:
            unrouted.append((job, slot))
        for channel in routing[job.pk]:
            channels[channel.pk] = channel
            per_channel[channel.pk].append((job, slot))
    queued = 0
    for pk, items in per_channel.items():
        alert = Alert(kind=kind, job_name="", job_id=None, key=now.isoformat(), context=summary_context(items, now))
        queued += alert_deliveries_record(channels=[channels[pk]], alert=alert, now=now)
    if unrouted:
        queued += _default_summary(kind, unrouted, now)
    system_log(
        event=f"job_alert_{kind}",
        level="warning" if late else "info",
        message=f"{len(changes)} jobs {'late' if late else 'no longer late'} at once: one summary to each of "
        f"{len(per_channel)} channel(s){' and the default recipients' if unrouted else ''} ({queued} new).",
        data={"jobs": len(changes), "channels": len(per_channel), "unrouted": len(unrouted)},
    )
    return queued


def _default_summary(kind: str, changes: Changes, now: datetime) -> int:
    recipients, _ = alert_recipients()  # JOBS_ALERT_RECIPIENTS, else the superusers
    if not recipients:
        logger.warning(
            "%s jobs: %s summary not sent: no JOBS_ALERT_RECIPIENTS and no superuser e-mail", len(changes), kind
        )
        return 0
    context = summary_context(changes, now)
    return notifications_enqueue_many(
        messages=[
            {
                "recipient": recipient,
                "template": TEMPLATES[kind],
                "context": context,
                "dedupe_key": f"job-alert:{kind}:{now.isoformat()}:{recipient}"[:200],
            }
            for recipient in recipients
        ]
    )
