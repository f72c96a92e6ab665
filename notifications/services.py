"""The notifications app's public functions: enqueue e-mail, send webhook events, staff actions.

Other apps (``billing``) call only these. Every function is safe inside the caller's
transaction: it writes rows and nothing else, and sending starts only after the caller
commits (process-notifications drains committed messages; webhook deliveries are handed
to a worker on commit). A rolled-back caller leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from itertools import islice

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.email.attachments import attachment_check
from notifications.email.html import html_sanitise, html_to_text
from notifications.email.rendering import template_check
from notifications.models import Notification, NotificationKey, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

ENQUEUE_BATCH = 1000
MESSAGE_KEYS = {"recipient", "template", "context", "dedupe_key", "send_after", "language", "attachments"}
Status = Notification.Status


def _notification_build(
    *,
    recipient: str,
    template: str,
    context: dict | None = None,
    dedupe_key: str | None = None,
    send_after: datetime | None = None,
    language: str | None = None,
    attachments: list[dict] | None = None,
    now: datetime,
) -> Notification:
    try:
        validate_email(recipient)
    except ValidationError:
        raise ValueError(f"Not an e-mail address: {recipient!r}") from None
    template_check(template)
    if dedupe_key is not None and not (0 < len(dedupe_key) <= 200):
        raise ValueError("dedupe_key must be 1 to 200 characters.")
    return Notification(
        recipient=recipient,
        template=template,
        context=dict(context or {}),
        dedupe_key=dedupe_key,
        send_after=send_after or now,
        language=language or "",
        attachments=[attachment_check(a) for a in attachments or []],
    )


@transaction.atomic
def notification_enqueue(
    *,
    recipient: str,
    template: str,
    context: dict,
    dedupe_key: str | None = None,
    send_after: datetime | None = None,
    language: str | None = None,
    attachments: list[dict] | None = None,
) -> Notification | None:
    """Queue one e-mail. Returns None when ``dedupe_key`` was queued before (nothing is written).

    ``attachments``: files by reference, read when the message is sent (``attachments.py``).
    Raises ValueError for a bad address, attachment, or a template without subject.txt / body.txt.
    """
    notification = _notification_build(
        recipient=recipient,
        template=template,
        context=context,
        dedupe_key=dedupe_key,
        send_after=send_after,
        language=language,
        attachments=attachments,
        now=timezone.now(),
    )
    try:
        # A savepoint, so a duplicate key does not break the caller's transaction and takes
        # the message inserted before it away again.
        with transaction.atomic():
            notification.save(force_insert=True)
            if dedupe_key is not None:
                NotificationKey.objects.create(key=dedupe_key, notification=notification)
    except IntegrityError:
        if dedupe_key is not None and NotificationKey.objects.filter(key=dedupe_key).exists():
            return None
        raise
    return notification


@transaction.atomic
def notifications_enqueue_many(*, messages: Iterable[dict]) -> int:
    """Queue many e-mails set-wise; returns how many were new (a known dedupe key is skipped).

    Per 1,000 messages: one INSERT of the messages, one INSERT ... ON CONFLICT DO NOTHING of
    their keys, one SELECT of which keys went in for our messages, and one DELETE of the
    messages whose key was taken (by an earlier message, a concurrent caller or an earlier
    row of the same call), so no other transaction ever sees those.
    """
    return _enqueue(messages)[0]


@transaction.atomic
def notifications_enqueue_keyed(*, messages: Iterable[dict]) -> dict[str, int]:
    """As ``notifications_enqueue_many`` for messages that all have a dedupe key: returns
    {dedupe key: notification id} of the messages queued now, so a caller can keep a reference."""
    return _enqueue(messages)[1]


def _enqueue(messages: Iterable[dict]) -> tuple[int, dict[str, int]]:
    now = timezone.now()
    iterator = iter(messages)
    created = 0
    queued: dict[str, int] = {}
    while batch := list(islice(iterator, ENQUEUE_BATCH)):
        rows = []
        for message in batch:
            unknown = set(message) - MESSAGE_KEYS
            if unknown:
                raise ValueError(f"Unknown message keys: {sorted(unknown)}")
            rows.append(_notification_build(**message, now=now))
        Notification.objects.bulk_create(rows)
        keys = [NotificationKey(key=row.dedupe_key, notification_id=row.pk) for row in rows if row.dedupe_key]
        keyed = [key.notification_id for key in keys]
        created += len(rows) - len(keyed)
        if keyed:
            NotificationKey.objects.bulk_create(keys, ignore_conflicts=True)
            ours = dict(NotificationKey.objects.filter(notification_id__in=keyed).values_list("notification_id", "key"))
            created += len(ours)
            queued.update({key: pk for pk, key in ours.items()})
            if taken := [pk for pk in keyed if pk not in ours]:
                Notification.objects.filter(pk__in=taken).delete()
    return created, queued


@transaction.atomic
def send_email(
    to: str | Iterable[str],
    subject: str,
    html: str,
    text: str | None = None,
    *,
    dedupe_key: str | None = None,
    send_after: datetime | None = None,
) -> int:
    """Queue one e-mail given as a subject and HTML, to each address in ``to``; how many were new.

    Any job (or view) may call it inside its transaction. The HTML is sanitised now (nh3) and,
    when ``text`` is None, the plain-text part is read from it (``notifications.email.html``);
    process-notifications sends it like every queued message, with the same backoff.
    ``dedupe_key`` makes a repeat a no-op, per recipient (``<key>:<address>``).
    """
    recipients = [to] if isinstance(to, str) else list(to)
    subject = " ".join(str(subject).split())[:255]
    if not recipients or not subject:
        raise ValueError("send_email needs at least one address and a subject.")
    clean = html_sanitise(html or "")
    plain = text if text is not None else html_to_text(clean)
    if not plain.strip():
        raise ValueError("send_email needs some text: the HTML has none, and no text was given.")
    now = timezone.now()
    queued = 0
    for recipient in recipients:
        try:
            validate_email(recipient)
        except ValidationError:
            raise ValueError(f"Not an e-mail address: {recipient!r}") from None
        key = f"{dedupe_key}:{recipient}" if dedupe_key is not None else None
        if key is not None and not (0 < len(key) <= 200):
            raise ValueError("dedupe_key plus the address must be 1 to 200 characters.")
        row = Notification(
            kind=Notification.Kind.RAW,
            recipient=recipient,
            subject=subject,
            html=clean,
            text=plain,
            dedupe_key=key,
            send_after=send_after or now,
        )
        queued += _raw_save(row, key)
    return queued


def _raw_save(notification: Notification, key: str | None) -> int:
    """Insert one message (and its key) in a savepoint: 0 when the key was queued before."""
    try:
        with transaction.atomic():
            notification.save(force_insert=True)
            if key is not None:
                NotificationKey.objects.create(key=key, notification=notification)
    except IntegrityError:
        if key is not None and NotificationKey.objects.filter(key=key).exists():
            return 0
        raise
    return 1


@transaction.atomic
def webhook_event_send(*, event: str, payload: dict) -> int:
    """Record one delivery per active endpoint subscribed to ``event``; send them after commit.

    Returns the number of deliveries recorded. A worker sends each one (retry-webhooks
    catches any whose message was lost).
    """
    if not event or len(event) > 100:
        raise ValueError("event must be 1 to 100 characters, e.g. 'payout.created'.")
    now = timezone.now()
    endpoints = [e for e in WebhookEndpoint.objects.filter(active=True) if e.subscribes_to(event)]
    deliveries = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(endpoint=e, event=event, payload=payload, next_attempt_at=now) for e in endpoints]
    )
    if deliveries:
        from notifications.webhooks import webhook_deliveries_dispatch

        ids = [d.pk for d in deliveries]
        if None in ids:  # a backend that cannot return ids from a bulk insert
            ids = list(
                WebhookDelivery.objects.filter(uuid__in=[d.uuid for d in deliveries]).values_list("pk", flat=True)
            )
        transaction.on_commit(lambda: webhook_deliveries_dispatch(delivery_ids=ids))
    logger.info("webhook event=%s deliveries=%s", event, len(deliveries))
    return len(deliveries)


# --- staff actions (admin) ----------------------------------------------------------------


@transaction.atomic
def notifications_retry(*, notification_ids: Iterable[int], now: datetime | None = None) -> int:
    """Dead, retrying or cancelled messages go back to the queue with a fresh attempt budget."""
    now = now or timezone.now()
    return Notification.objects.filter(
        pk__in=list(notification_ids), status__in=[Status.DEAD, Status.RETRYING, Status.CANCELLED]
    ).update(status=Status.QUEUED, attempts=0, send_after=now, claimed_at=None, claim_token=None, updated_at=now)


@transaction.atomic
def notifications_cancel(*, notification_ids: Iterable[int]) -> int:
    """Waiting messages are not sent. A message being sent right now cannot be called back."""
    return Notification.objects.filter(pk__in=list(notification_ids), status__in=Notification.WAITING_STATUSES).update(
        status=Status.CANCELLED, updated_at=timezone.now()
    )
