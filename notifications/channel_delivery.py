"""Alerts to channels: record one delivery per channel, send it, retry it, record the result.

Each kind of channel has its own durable queue, so none waits for another:

* e-mail lists: rows of the e-mail queue (process-notifications sends them);
* signed webhooks: ``WebhookDelivery`` rows of the channel's endpoint, event ``job.alert``;
* Slack and PagerDuty: ``AlertDelivery`` rows, handed to a worker on commit (sent here and now
  if the broker is away), retried after ``alert_backoff`` (30 s, x3, at most 15 min) up to
  ``alert_max_attempts``, and swept by process-notifications every 30 s before it drains the
  e-mail queue (a lost message, a sender that died). A mail outage stops none of them.

Every attempt: claim (conditional UPDATE, attempt counted), POST through the outbound guard,
record status, a redacted excerpt of the answer, duration and error. A destination the guard
refuses is dead at once. Error texts never hold the channel's URL or key.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from celery import current_app
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from core.crypto import SecretUnavailable, secret_decrypt
from core.http_guard import DestinationRefused, guarded_request
from core.redaction import redact

from .channel_messages import (
    Alert,
    alert_summary,
    digest_link,
    email_digest_context,
    pagerduty_event,
    slack_digest,
    slack_message,
    webhook_alert_payload,
)
from .channel_models import (
    AlertChannel,
    AlertDelivery,
    alert_backoff,
    alert_max_attempts,
    digest_after,
    digest_window,
)
from .models import WebhookDelivery

logger = logging.getLogger(__name__)
Status = AlertDelivery.Status
Kind = AlertChannel.Kind
DELIVER_TASK = "notifications.tasks.alert_deliver"
USER_AGENT = "Cronhouse-Alerts/1.0"
# Names the webhook deliveries of alerts (uuid5), so one alert is one delivery id.
ALERT_NAMESPACE = uuid.UUID("6f1c1d2e-6a41-4a8e-9c39-0a3e2f6b7d15")
SWEEP_SECONDS = 10
EMAIL_TEMPLATES = {
    "failed": "job_alerts/failed",
    "escalated": "job_alerts/escalated",
    "recovered": "job_alerts/recovered",
    "late": "job_alerts/late",
    "late_recovered": "job_alerts/late_recovered",
    "slow": "job_alerts/slow",
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
    from .services import notifications_enqueue_many

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
    from .webhooks import webhook_deliveries_dispatch

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


# --- dispatch (after commit) ----------------------------------------------------------------


def alert_deliveries_dispatch(*, delivery_ids: list[int], countdown: float | None = None) -> None:
    """Hand each delivery to a worker. If the broker is away, send them here and now instead
    (a retry whose message was lost waits for the sweep)."""
    for delivery_id in delivery_ids:
        try:
            current_app.send_task(DELIVER_TASK, args=[delivery_id], countdown=countdown)
        except Exception as exc:  # kombu raises many types for one meaning: not sent
            logger.warning("alert dispatch failed delivery=%s (%s)", delivery_id, type(exc).__name__)
            if countdown is None:
                alert_deliver(delivery_id=delivery_id)


# --- one attempt ------------------------------------------------------------------------------


def _due(now: datetime) -> Q:
    stale = now - timedelta(seconds=settings.NOTIFICATIONS_STALE_CLAIM_SECONDS)
    return Q(status__in=AlertDelivery.WAITING_STATUSES, next_attempt_at__lte=now) | Q(
        status=Status.SENDING, claimed_at__lt=stale
    )


def _waits_for_earlier(delivery_id: int) -> bool:
    """A PagerDuty event waits for the earlier events of its incident (a resolve must not
    overtake its trigger while that one is being retried)."""
    delivery = AlertDelivery.objects.filter(pk=delivery_id).values("channel_id", "incident_key").first()
    if not delivery or not delivery["incident_key"]:
        return False
    return AlertDelivery.objects.filter(
        channel_id=delivery["channel_id"],
        incident_key=delivery["incident_key"],
        pk__lt=delivery_id,
        status__in=AlertDelivery.UNFINISHED_STATUSES,
    ).exists()


def alert_delivery_claim(*, delivery_id: int, now: datetime) -> AlertDelivery | None:
    """waiting (and due) -> sending, counting the attempt; None if another sender has it or an
    earlier event of its incident is still on its way."""
    if _waits_for_earlier(delivery_id):
        return None
    claimed = (
        AlertDelivery.objects.filter(_due(now + timedelta(seconds=1)), pk=delivery_id)
        .filter(attempts__lt=alert_max_attempts())
        .update(status=Status.SENDING, attempts=F("attempts") + 1, claimed_at=now)
    )
    if not claimed:
        return None
    return AlertDelivery.objects.select_related("channel").get(pk=delivery_id)


def _request(delivery: AlertDelivery, secret: str) -> tuple[str, dict]:
    """(URL, JSON body) of one attempt, the secret put in where the receiver expects it."""
    if delivery.channel.kind == Kind.SLACK:
        return secret, delivery.payload
    return delivery.channel.url, {"routing_key": secret, **delivery.payload}


def secret_parts(secret: str) -> list[str]:
    """A secret and, for a URL, its path and query: requests' and urllib3's messages name a
    request by its path alone, and a Slack webhook's path is its credential."""
    parts = [secret]
    split = urlsplit(secret)
    if split.scheme and split.path not in ("", "/"):
        parts.append(split.path + (f"?{split.query}" if split.query else ""))
        parts.append(split.path)
    return parts


def _attempt(delivery: AlertDelivery) -> dict:
    """POST the delivery once; the fields to record. No text recorded or logged holds the
    channel's secret: the guard's and requests' messages carry the URL, so they are redacted
    with it."""
    started = time.monotonic()
    outcome: dict = {"response_status": None, "response_body": "", "last_error": ""}
    if delivery.channel.kind == Kind.EMAIL:
        _email_digest_enqueue(delivery)  # the e-mail queue sends it, with its own retries
        outcome["duration"] = timedelta(seconds=time.monotonic() - started)
        return outcome
    secret = ""
    try:
        secret = secret_decrypt(delivery.channel.secret)
        url, body = _request(delivery, secret)
        response = guarded_request(
            "POST",
            url,
            json=body,
            headers={"User-Agent": USER_AGENT},
            connect_timeout=settings.WEBHOOK_CONNECT_TIMEOUT,
            read_timeout=settings.WEBHOOK_READ_TIMEOUT,
            max_body_bytes=settings.WEBHOOK_RESPONSE_EXCERPT,
            cross_origin_redirects=False,
        )
    except SecretUnavailable as exc:
        outcome.update(last_error=str(exc), refused=True)
    except DestinationRefused as exc:
        outcome.update(last_error=redact(str(exc), extra=secret_parts(secret)), refused=True)
    except requests.RequestException as exc:
        outcome["last_error"] = redact(f"{type(exc).__name__}: {exc}", extra=secret_parts(secret))
    else:
        answer = redact(response.content.decode("utf-8", "replace"), extra=secret_parts(secret))
        outcome.update(response_status=response.status_code, response_body=answer[: settings.WEBHOOK_RESPONSE_EXCERPT])
        if not 200 <= response.status_code < 300:
            outcome["last_error"] = f"HTTP {response.status_code} from the {delivery.channel.get_kind_display()}"
    outcome["duration"] = timedelta(seconds=time.monotonic() - started)
    return outcome


def _email_digest_enqueue(delivery: AlertDelivery) -> int:
    from .services import notifications_enqueue_many

    return notifications_enqueue_many(
        messages=[
            {
                "recipient": recipient,
                "template": "job_alerts/digest",
                "context": delivery.payload,
                "dedupe_key": f"job-alert:digest:{delivery.pk}:{recipient}"[:200],
            }
            for recipient in delivery.channel.recipient_list()
        ]
    )


def alert_deliver(*, delivery_id: int, now: datetime | None = None) -> AlertDelivery | None:
    """Claim, send and record one delivery (the Celery task and the sweep call this)."""
    now = now or timezone.now()
    delivery = alert_delivery_claim(delivery_id=delivery_id, now=now)
    if delivery is None:
        return None
    if delivery.digest and delivery.attempts == 1:
        digest_fold(delivery=delivery, now=now)
    return alert_delivery_record(delivery=delivery, outcome=_attempt(delivery), now=timezone.now())


def alert_delivery_record(*, delivery: AlertDelivery, outcome: dict, now: datetime) -> AlertDelivery:
    refused = outcome.pop("refused", False)
    fields = dict(outcome, claimed_at=None)
    retry_in = None
    if not outcome["last_error"]:
        fields.update(status=Status.DELIVERED, delivered_at=now)
    elif refused or delivery.attempts >= alert_max_attempts():
        fields.update(status=Status.DEAD)
    else:
        retry_in = alert_backoff(delivery.attempts)
        fields.update(status=Status.RETRYING, next_attempt_at=now + retry_in)
    with transaction.atomic():
        # Only the attempt that claimed it records (a reclaimed delivery has a higher count).
        AlertDelivery.objects.filter(pk=delivery.pk, status=Status.SENDING, attempts=delivery.attempts).update(**fields)
        if retry_in is not None:
            transaction.on_commit(
                lambda: alert_deliveries_dispatch(delivery_ids=[delivery.pk], countdown=retry_in.total_seconds())
            )
        elif delivery.incident_key:
            transaction.on_commit(lambda: _incident_next(delivery))
    delivery.refresh_from_db()
    if delivery.status == Status.DEAD:
        _log_dead(delivery)
    logger.info(
        "alert delivery=%s channel=%s status=%s attempt=%s",
        delivery.pk,
        delivery.channel.name,
        delivery.status,
        delivery.attempts,
    )
    return delivery


@transaction.atomic
def digest_fold(*, delivery: AlertDelivery, now: datetime) -> int:
    """Make ``delivery`` the digest of its channel's held alerts that are due: they are folded
    into it (not sent on their own) and its payload becomes one message naming them all.
    Returns how many were folded. Skip-locked, so a second sender folds the others, not these."""
    held = list(
        AlertDelivery.objects.select_for_update(skip_locked=True)
        .filter(channel_id=delivery.channel_id, digest=True, status=Status.PENDING, next_attempt_at__lte=now)
        .exclude(pk=delivery.pk)
        .order_by("pk")
    )
    AlertDelivery.objects.filter(pk__in=[row.pk for row in held]).update(status=Status.FOLDED, digest_into=delivery)
    summaries = [delivery.summary, *(row.summary for row in held)]
    if delivery.channel.kind == Kind.EMAIL:
        delivery.payload = email_digest_context(summaries)
    else:
        delivery.payload = slack_digest(summaries, link=digest_link())
    AlertDelivery.objects.filter(pk=delivery.pk).update(payload=delivery.payload)
    return len(held)


def _incident_next(delivery: AlertDelivery) -> None:
    """The incident's next event, which waited for this one, goes now."""
    following = (
        AlertDelivery.objects.filter(
            channel_id=delivery.channel_id,
            incident_key=delivery.incident_key,
            pk__gt=delivery.pk,
            status__in=AlertDelivery.WAITING_STATUSES,
        )
        .order_by("pk")
        .values_list("pk", flat=True)[:1]
    )
    alert_deliveries_dispatch(delivery_ids=list(following))


def _log_dead(delivery: AlertDelivery) -> None:
    from jobs.operations.logs import system_log

    system_log(
        event="alert_delivery_dead",
        level="error",
        message=f"Gave up on alert delivery #{delivery.pk} ({delivery.alert} {delivery.job_name} to channel "
        f"{delivery.channel.name}) after {delivery.attempts} attempt(s): {delivery.last_error[:500]}",
        data={"delivery_id": delivery.pk},
    )


def alert_deliveries_sweep(
    *, now: datetime | None = None, limit: int = 200, max_seconds: float = SWEEP_SECONDS
) -> dict:
    """Send every delivery that is due (or whose sender died), oldest first; give up on those out
    of attempts whose sender died. process-notifications calls this before the e-mail drain, so
    it stops starting attempts after ``max_seconds``: a receiver that hangs until its timeout
    must not hold the e-mail queue up (the rest go on the next run, or with the workers)."""
    now = now or timezone.now()
    deadline = time.monotonic() + max_seconds
    ids = list(
        AlertDelivery.objects.filter(_due(now), attempts__lt=alert_max_attempts())
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    counts = {"attempted": 0, "delivered": 0, "retrying": 0, "dead": 0}
    for delivery_id in ids:
        if time.monotonic() > deadline:
            break
        delivery = alert_deliver(delivery_id=delivery_id, now=now)
        if delivery is None:
            continue  # another sender has it, or it waits for its incident's earlier event
        counts["attempted"] += 1
        if delivery.status in (Status.DELIVERED, Status.RETRYING, Status.DEAD):
            counts[delivery.status] += 1
    stale = now - timedelta(seconds=settings.NOTIFICATIONS_STALE_CLAIM_SECONDS)
    counts["dead"] += AlertDelivery.objects.filter(
        status=Status.SENDING, claimed_at__lt=stale, attempts__gte=alert_max_attempts()
    ).update(status=Status.DEAD, claimed_at=None, last_error="The sender stopped before recording a result.")
    return counts


def alert_channel_secrets() -> list[str]:
    """The channels' secrets in clear, for ``core.redaction`` (registered in ``apps.py``); one
    that cannot be decrypted is skipped (it cannot be sent either)."""
    values = []
    for stored in AlertChannel.objects.exclude(secret="").values_list("secret", flat=True):
        try:
            values.extend(secret_parts(secret_decrypt(stored)))
        except SecretUnavailable:
            continue
    return values


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


@transaction.atomic
def alert_deliveries_retry(*, delivery_ids: list[int], now: datetime | None = None) -> int:
    """Staff retry: dead or retrying deliveries get a fresh attempt budget and are sent on commit."""
    now = now or timezone.now()
    ids = list(
        AlertDelivery.objects.filter(pk__in=delivery_ids, status__in=[Status.DEAD, Status.RETRYING]).values_list(
            "pk", flat=True
        )
    )
    AlertDelivery.objects.filter(pk__in=ids).update(status=Status.PENDING, attempts=0, next_attempt_at=now)
    transaction.on_commit(lambda: alert_deliveries_dispatch(delivery_ids=ids))
    return len(ids)
