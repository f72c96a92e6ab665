"""Alert deliveries, sent: claim, POST through the outbound guard, record, retry, sweep.

Slack and PagerDuty deliveries are handed to a worker on commit (sent here and now if the broker
is away), retried after ``alert_backoff`` (30 s, x3, at most 15 min) up to
``alert_max_attempts``, and swept by process-notifications every 30 s before it drains the
e-mail queue (a lost message, a sender that died). A mail outage stops none of them.

Every attempt: claim (conditional UPDATE, attempt counted), POST, record status, a redacted
excerpt of the answer, duration and error. A destination the guard refuses is dead at once.
Error texts never hold the channel's URL or key. A held digest delivery, when it goes, folds
the channel's other held alerts into one message (``digest_fold``).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.crypto import SecretUnavailable, secret_decrypt
from core.http_guard import DestinationRefused, guarded_request
from core.redaction import redact
from notifications.attempts import attempt_due, deliveries_dispatch
from notifications.channels.messages import digest_link, email_digest_context, slack_digest
from notifications.models.channels import AlertChannel, AlertDelivery, alert_backoff, alert_max_attempts

logger = logging.getLogger(__name__)
Status = AlertDelivery.Status
Kind = AlertChannel.Kind
DELIVER_TASK = "notifications.tasks.alert_deliver"
USER_AGENT = "Cronhouse-Alerts/1.0"
SWEEP_SECONDS = 10


# --- dispatch (after commit) ----------------------------------------------------------------


def alert_deliveries_dispatch(*, delivery_ids: list[int], countdown: float | None = None) -> None:
    """Hand each delivery to a worker, or send it here when the broker is away (``deliveries_dispatch``)."""
    deliveries_dispatch(
        task=DELIVER_TASK, what="alert", delivery_ids=delivery_ids, countdown=countdown, deliver_here=alert_deliver
    )


# --- one attempt ------------------------------------------------------------------------------


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
        AlertDelivery.objects.filter(attempt_due(AlertDelivery, now + timedelta(seconds=1)), pk=delivery_id)
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
    from notifications.services import notifications_enqueue_many

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
        AlertDelivery.objects.filter(attempt_due(AlertDelivery, now), attempts__lt=alert_max_attempts())
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


# --- staff actions ---------------------------------------------------------------------------


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
