"""Outgoing webhooks: signing, delivery through the outbound-HTTP guard, retries.

Signature scheme (documented for receivers in the README):

    Cronhouse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + raw body)>

The receiver recomputes the HMAC over the exact bytes it received, compares in constant
time, and rejects a timestamp older than its tolerance (replays). ``webhook_signature_verify``
does all three. Each request also carries ``Cronhouse-Event`` and ``Cronhouse-Delivery`` (the
delivery's uuid, the same on every attempt, so a receiver can drop repeats).

A delivery is recorded first (``webhook_event_send``), then sent on commit by a worker
(``notifications.tasks.webhook_deliver``), then its result recorded. A failed attempt is
retried after 1 min x 5^(attempt - 1) (event-driven: the retry is a Celery message with a
countdown) until WEBHOOK_MAX_ATTEMPTS, then the delivery is ``dead``. retry-webhooks sends
whatever is still due (a lost message, a sender that died). A URL the guard refuses is dead
at once: nothing was sent and retrying cannot help.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.http_guard import DestinationRefused, guarded_request
from core.redaction import redact
from notifications.attempts import attempt_due, deliveries_dispatch
from notifications.models import WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)
Status = WebhookDelivery.Status
DELIVER_TASK = "notifications.tasks.webhook_deliver"
SIGNATURE_HEADER = "Cronhouse-Signature"
USER_AGENT = "Cronhouse-Webhooks/1.0"


class InvalidSignature(Exception):
    """The signature header is missing, malformed, stale or does not match."""


# --- signing ----------------------------------------------------------------------------


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The value of the Cronhouse-Signature header for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def webhook_signature_verify(
    *, secret: str, header: str, body: bytes, tolerance_seconds: int = 300, now: float | None = None
) -> int:
    """Check a received Cronhouse-Signature header; returns its timestamp or raises InvalidSignature.

    Receivers can copy this function: it needs only the standard library.
    """
    try:
        fields = [part.split("=", 1) for part in (header or "").split(",")]
        timestamp = int(next(value for key, value in fields if key.strip() == "t"))
        signatures = [value.strip() for key, value in fields if key.strip() == "v1"]
    except (ValueError, StopIteration):
        raise InvalidSignature("Malformed signature header.") from None
    if not signatures:
        raise InvalidSignature("No v1 signature in the header.")
    now = time.time() if now is None else now
    if abs(now - timestamp) > tolerance_seconds:
        raise InvalidSignature(f"Timestamp {timestamp} is outside the {tolerance_seconds}s tolerance.")
    expected = webhook_signature(secret=secret, timestamp=timestamp, body=body).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidSignature("Signature does not match.")
    return timestamp


def webhook_body(delivery: WebhookDelivery) -> bytes:
    document = {
        "id": str(delivery.uuid),
        "event": delivery.event,
        "created_at": delivery.created_at.isoformat(),
        "data": delivery.payload,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":")).encode()


def webhook_headers(delivery: WebhookDelivery, body: bytes, timestamp: int) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Cronhouse-Event": delivery.event,
        "Cronhouse-Delivery": str(delivery.uuid),
        SIGNATURE_HEADER: webhook_signature(secret=delivery.endpoint.secret, timestamp=timestamp, body=body),
    }


# --- dispatch (after commit) -------------------------------------------------------------


def webhook_deliveries_dispatch(*, delivery_ids: list[int], countdown: float | None = None) -> None:
    """Hand each delivery to a worker, or send it here when the broker is away (``deliveries_dispatch``;
    a retry whose message was lost waits for retry-webhooks)."""
    deliveries_dispatch(
        task=DELIVER_TASK, what="webhook", delivery_ids=delivery_ids, countdown=countdown, deliver_here=webhook_deliver
    )


# --- one attempt ----------------------------------------------------------------------------


def backoff_after(attempt: int) -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_RETRY_BASE_SECONDS * 5 ** max(attempt - 1, 0))


def webhook_delivery_claim(*, delivery_id: int, now: datetime) -> WebhookDelivery | None:
    """waiting (and due) -> sending, counting the attempt; None if another sender has it."""
    claimed = (
        WebhookDelivery.objects.filter(attempt_due(WebhookDelivery, now + timedelta(seconds=1)), pk=delivery_id)
        .filter(attempts__lt=settings.WEBHOOK_MAX_ATTEMPTS)
        .update(status=Status.SENDING, attempts=F("attempts") + 1, claimed_at=now)
    )
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)


def endpoint_secrets() -> list[str]:
    """The endpoints' signing secrets, for ``core.redaction`` (registered in ``apps.py``)."""
    return list(WebhookEndpoint.objects.exclude(secret="").values_list("secret", flat=True))


def _attempt(delivery: WebhookDelivery) -> dict:
    """POST the delivery once; the fields to record."""
    body = webhook_body(delivery)
    started = time.monotonic()
    outcome: dict = {"response_status": None, "response_body": "", "last_error": ""}
    try:
        response = guarded_request(
            "POST",
            delivery.endpoint.url,
            headers=webhook_headers(delivery, body, int(time.time())),
            data=body,
            connect_timeout=settings.WEBHOOK_CONNECT_TIMEOUT,
            read_timeout=settings.WEBHOOK_READ_TIMEOUT,
            max_body_bytes=settings.WEBHOOK_RESPONSE_EXCERPT,
        )
    except DestinationRefused as exc:
        outcome.update(last_error=str(exc), refused=True)
    except requests.RequestException as exc:
        outcome["last_error"] = redact(f"{type(exc).__name__}: {exc}")
    else:
        # Redacted whole, then cut, so no piece of a secret straddling the cut survives.
        answer = redact(response.content.decode("utf-8", "replace"), extra=[delivery.endpoint.secret])
        excerpt = answer[: settings.WEBHOOK_RESPONSE_EXCERPT]
        outcome.update(response_status=response.status_code, response_body=excerpt)
        if not 200 <= response.status_code < 300:
            outcome["last_error"] = f"HTTP {response.status_code} from {response.url}"
    outcome["duration"] = timedelta(seconds=time.monotonic() - started)
    return outcome


def webhook_deliver(*, delivery_id: int, now: datetime | None = None) -> WebhookDelivery | None:
    """Claim, send and record one delivery (the Celery task and retry-webhooks call this)."""
    now = now or timezone.now()
    delivery = webhook_delivery_claim(delivery_id=delivery_id, now=now)
    if delivery is None:
        return None
    return webhook_delivery_record(delivery=delivery, outcome=_attempt(delivery), now=timezone.now())


def webhook_delivery_record(*, delivery: WebhookDelivery, outcome: dict, now: datetime) -> WebhookDelivery:
    refused = outcome.pop("refused", False)
    fields = dict(outcome, claimed_at=None)
    retry_in = None
    if not outcome["last_error"]:
        fields.update(status=Status.DELIVERED, delivered_at=now)
    elif refused or delivery.attempts >= settings.WEBHOOK_MAX_ATTEMPTS:
        fields.update(status=Status.DEAD)
    else:
        retry_in = backoff_after(delivery.attempts)
        fields.update(status=Status.RETRYING, next_attempt_at=now + retry_in)
    with transaction.atomic():
        # Only the attempt that claimed it records (a reclaimed delivery has a higher count).
        WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.SENDING, attempts=delivery.attempts).update(
            **fields
        )
        if retry_in is not None:
            transaction.on_commit(
                lambda: webhook_deliveries_dispatch(delivery_ids=[delivery.pk], countdown=retry_in.total_seconds())
            )
    delivery.refresh_from_db()
    if delivery.status == Status.DEAD:
        from jobs.operations.logs import system_log

        system_log(
            event="webhook_dead",
            level="error",
            message=f"Gave up on webhook delivery #{delivery.pk} ({delivery.event} to {delivery.endpoint}) "
            f"after {delivery.attempts} attempt(s): {delivery.last_error[:500]}",
            data={"delivery_id": delivery.pk},
        )
    logger.info("webhook delivery=%s status=%s attempt=%s", delivery.pk, delivery.status, delivery.attempts)
    return delivery


def webhooks_retry_due(*, now: datetime | None = None, limit: int = 500) -> dict:
    """retry-webhooks: send every delivery that is due (or whose sender died), oldest first."""
    now = now or timezone.now()
    ids = list(
        WebhookDelivery.objects.filter(attempt_due(WebhookDelivery, now), attempts__lt=settings.WEBHOOK_MAX_ATTEMPTS)
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )
    counts = {"attempted": 0, "delivered": 0, "retrying": 0, "dead": 0}
    for delivery_id in ids:
        delivery = webhook_deliver(delivery_id=delivery_id, now=now)
        if delivery is None:
            continue  # another sender claimed it first
        counts["attempted"] += 1
        key = {Status.DELIVERED: "delivered", Status.RETRYING: "retrying", Status.DEAD: "dead"}.get(delivery.status)
        if key:
            counts[key] += 1
    # Sending deliveries out of attempts whose sender died can never be claimed again.
    counts["dead"] += _bury_exhausted(now)
    return counts


def _bury_exhausted(now: datetime) -> int:
    stale = now - timedelta(seconds=settings.NOTIFICATIONS_STALE_CLAIM_SECONDS)
    return WebhookDelivery.objects.filter(
        status=Status.SENDING, claimed_at__lt=stale, attempts__gte=settings.WEBHOOK_MAX_ATTEMPTS
    ).update(status=Status.DEAD, claimed_at=None, last_error="The sender stopped before recording a result.")


@transaction.atomic
def webhook_deliveries_retry(*, delivery_ids: list[int], now: datetime | None = None) -> int:
    """Staff retry: dead or retrying deliveries get a fresh attempt budget and are sent on commit."""
    now = now or timezone.now()
    ids = list(
        WebhookDelivery.objects.filter(pk__in=delivery_ids, status__in=[Status.DEAD, Status.RETRYING]).values_list(
            "pk", flat=True
        )
    )
    WebhookDelivery.objects.filter(pk__in=ids).update(status=Status.PENDING, attempts=0, next_attempt_at=now)
    transaction.on_commit(lambda: webhook_deliveries_dispatch(delivery_ids=ids))
    return len(ids)


@transaction.atomic
def webhook_endpoint_ping(*, endpoint, now: datetime | None = None) -> WebhookDelivery:
    """Record a ``ping`` delivery to one endpoint (whatever it subscribes to) and send it on commit."""
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint, event="ping", payload={"ping": True}, next_attempt_at=now or timezone.now()
    )
    transaction.on_commit(lambda: webhook_deliveries_dispatch(delivery_ids=[delivery.pk]))
    return delivery
