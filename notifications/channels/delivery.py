"""Alerts to channels, recorded: one delivery per channel, inside the alert's transaction.

Each kind of channel has its own durable queue, so none waits for another:

* e-mail lists: rows of the e-mail queue (process-notifications sends them), and an
  ``AlertDelivery`` row per alert that makes a repeat a no-op and lets a burst be counted;
* signed webhooks: ``WebhookDelivery`` rows of the channel's endpoint, event ``job.alert``;
* Slack and PagerDuty: ``AlertDelivery`` rows, sent after commit (``channel_sending``).

A burst (``digest_after()`` alerts on a channel within ``digest_window()``) is held to the end
of the window and goes out as one digest message (Slack, e-mail lists).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from notifications.channels.messages import Alert, alert_summary, pagerduty_event, slack_message, webhook_alert_payload
from notifications.channels.sending import alert_deliveries_dispatch
from notifications.models import WebhookDelivery
from notifications.models.channels import AlertChannel, AlertDelivery, digest_after, digest_window

Status = AlertDelivery.Status
Kind = AlertChannel.Kind
# Names the webhook deliveries of alerts (uuid5), so one alert is one delivery id.
ALERT_NAMESPACE = uuid.UUID("6f1c1d2e-6a41-4a8e-9c39-0a3e2f6b7d15")
EMAIL_TEMPLATES = {
    "failed": "job_alerts/failed",
    "escalated": "job_alerts/escalated",
    "recovered": "job_alerts/recovered",
    "late": "job_alerts/late",
    "late_recovered": "job_alerts/late_recovered",
    "slow": "job_alerts/slow",
    "late_summary": "job_alerts/late_summary",
    "late_summary_ended": "job_alerts/late_summary_ended",
    "test": "notifications/test_message",
}


# --- recording (inside the alert's transaction) -------------------------------------------


def alert_deliveries_record(*, channels: list[AlertChannel], alert: Alert, now: datetime | None = None) -> int:
    """Record ``alert`` on each channel; every send starts after the caller commits. Returns how
    many channels got something new (a repeated alert, same kind and key, records nothing)."""
    now = now or timezone.now()
    recorded = 0
    for channel in channels:
        if channel.kind == Kind.EMAIL:
            recorded += _email_record(channel, alert, now)
        elif channel.kind == Kind.WEBHOOK:
            recorded += _webhook_record(channel, alert, now)
    recorded += _deliveries_record([c for c in channels if c.kind in AlertChannel.DELIVERY_KINDS], alert, now)
    return recorded


def _email_record(channel: AlertChannel, alert: Alert, now: datetime) -> int:
    """The alert's e-mail to each address of the list, on the e-mail queue. An ``AlertDelivery``
    row records it too (delivered: handed to the queue), which makes a repeat a no-op and lets a
    burst be counted: in one, the alert is held and goes out in the list's digest e-mail."""
    from notifications.services import notifications_enqueue_many

    row = _delivery_row(channel, alert, payload={}, now=now)
    if not alert.kind.startswith("test"):
        _digest_hold(row, now)
    if not row.digest:
        row.status, row.delivered_at = Status.DELIVERED, now
    if not _deliveries_insert([row], now):
        return 0
    if row.digest:
        return 1  # sent with the digest
    context = {"job_name": alert.job_name, "job_id": alert.job_id, **alert.context}
    return notifications_enqueue_many(
        messages=[
            {
                "recipient": recipient,
                "template": EMAIL_TEMPLATES[alert.kind],
                "context": context,
                "dedupe_key": f"job-alert:{alert.kind}:{alert.key}:{recipient}"[:200],
            }
            for recipient in channel.recipient_list()
        ]
    )


def _webhook_record(channel: AlertChannel, alert: Alert, now: datetime) -> int:
    """One ``job.alert`` delivery to the channel's endpoint. Its uuid (the Cronhouse-Delivery
    header) is derived from the channel and the alert, so a repeated alert hits the uuid's unique
    constraint and records nothing, and a receiver that got it twice sees one id."""
    from notifications.webhooks import webhook_deliveries_dispatch

    delivery_uuid = uuid.uuid5(ALERT_NAMESPACE, f"{channel.pk}:{alert.kind}:{alert.key}")
    row = WebhookDelivery(
        uuid=delivery_uuid,
        endpoint_id=channel.endpoint_id,
        event="job.alert",
        payload=webhook_alert_payload(alert),
        next_attempt_at=now,
    )
    if WebhookDelivery.objects.filter(uuid=delivery_uuid).exists():
        return 0
    WebhookDelivery.objects.bulk_create([row], ignore_conflicts=True)  # a concurrent twin: nothing
    ids = list(WebhookDelivery.objects.filter(uuid=delivery_uuid, attempts=0).values_list("pk", flat=True))
    transaction.on_commit(lambda: webhook_deliveries_dispatch(delivery_ids=ids))
    return len(ids)


def _delivery_row(channel: AlertChannel, alert: Alert, *, payload: dict, now: datetime) -> AlertDelivery:
    return AlertDelivery(
        channel=channel,
        alert=alert.kind,
        job_name=alert.job_name,
        summary=alert_summary(alert)[:300],
        dedupe_key=f"{alert.kind}:{alert.key}"[:200],
        incident_key=alert.incident_key if channel.kind == Kind.PAGERDUTY else "",
        payload=payload,
        next_attempt_at=now,
    )


def _deliveries_record(channels: list[AlertChannel], alert: Alert, now: datetime) -> int:
    rows = []
    for channel in channels:
        payload = slack_message(alert) if channel.kind == Kind.SLACK else pagerduty_event(alert)
        if payload is None:
            continue  # an alert this kind of channel does not carry (a slow run on PagerDuty)
        row = _delivery_row(channel, alert, payload=payload, now=now)
        if channel.kind == Kind.SLACK and not alert.kind.startswith("test"):
            _digest_hold(row, now)
        rows.append(row)
    return _deliveries_insert(rows, now)


def _deliveries_insert(rows: list[AlertDelivery], now: datetime) -> int:
    """Insert the rows not recorded before (same channel and key) and send the pending ones on
    commit; how many were new."""
    if not rows:
        return 0
    key = rows[0].dedupe_key
    channel_ids = [row.channel_id for row in rows]
    known = set(
        AlertDelivery.objects.filter(channel_id__in=channel_ids, dedupe_key=key).values_list("channel_id", flat=True)
    )
    rows = [row for row in rows if row.channel_id not in known]
    AlertDelivery.objects.bulk_create(rows, ignore_conflicts=True)  # a concurrent twin: nothing new
    pending = AlertDelivery.objects.filter(
        channel_id__in=[row.channel_id for row in rows], dedupe_key=key, attempts=0, status=Status.PENDING
    ).values_list("pk", "next_attempt_at")
    for pk, due in pending:
        # A held alert's message waits for its digest's time (the sweep is the safety net).
        wait = (due - now).total_seconds()
        transaction.on_commit(
            lambda pk=pk, wait=wait: alert_deliveries_dispatch(delivery_ids=[pk], countdown=wait if wait > 0 else None)
        )
    return len(rows)


def _digest_hold(row: AlertDelivery, now: datetime) -> None:
    """In a burst (the channel had ``digest_after()`` alerts within the window), hold the alert
    until the window's end: the first held one's time, so the whole burst goes as one message.
    PagerDuty has no digest: each job is its own incident, which PagerDuty groups itself."""
    window = digest_window()
    held = Q(digest=True, status=Status.PENDING)
    recent = AlertDelivery.objects.filter(channel=row.channel, created_at__gte=now - window).aggregate(
        count=Count("pk"), digest_at=Min("next_attempt_at", filter=held)
    )  # one query, on the (channel, created_at) index
    if recent["count"] < digest_after():
        return
    row.digest = True
    row.next_attempt_at = recent["digest_at"] or now + window


def alert_recorded_on(channels: list[AlertChannel], *, kind: str, key: str) -> list[AlertChannel]:
    """The channels among ``channels`` on which the alert (kind, key) was recorded: two queries."""
    recorded = set(
        AlertDelivery.objects.filter(channel__in=channels, dedupe_key=f"{kind}:{key}"[:200]).values_list(
            "channel_id", flat=True
        )
    )
    webhooks = {uuid.uuid5(ALERT_NAMESPACE, f"{c.pk}:{kind}:{key}"): c.pk for c in channels if c.kind == Kind.WEBHOOK}
    if webhooks:
        found = WebhookDelivery.objects.filter(uuid__in=list(webhooks)).values_list("uuid", flat=True)
        recorded |= {webhooks[delivery_uuid] for delivery_uuid in found}
    return [channel for channel in channels if channel.pk in recorded]


# --- staff actions --------------------------------------------------------------------------


@transaction.atomic
def alert_channels_test(*, channels: list[AlertChannel], now: datetime | None = None) -> int:
    """Record a test alert on each channel (PagerDuty: a trigger and its resolve), sent on
    commit like any alert. Returns how many channels got one."""
    now = now or timezone.now()
    sent = 0
    for channel in channels:
        stamp = now.strftime("%Y%m%dT%H%M%S.%f")
        label = {"label": f"Alert channel {channel.name}"}
        test = Alert(kind="test", job_name=channel.name, job_id=None, key=f"{channel.pk}:{stamp}", context=label)
        sent += bool(alert_deliveries_record(channels=[channel], alert=test, now=now))
        if channel.kind == Kind.PAGERDUTY:
            # Close the test incident at once: its resolve waits for the trigger (same dedup key).
            resolve = Alert(kind="test_resolved", job_name=channel.name, job_id=None, key=test.key)
            _deliveries_record([channel], resolve, now)
    return sent
