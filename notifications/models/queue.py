"""The notification queue and outgoing webhooks.

A ``Notification`` is one e-mail to one recipient, rendered from a template triple when it
is sent, or (``kind="raw"``) a subject, sanitised HTML and text given by another app
(``services.send_email``). A ``WebhookEndpoint`` subscribes a URL to events; a ``WebhookDelivery`` is one event
sent (or to be sent) to one endpoint, with the result of its last attempt.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q


def _signing_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


class Notification(models.Model):
    """One queued e-mail. process-notifications claims, renders, sends and records it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        PROCESSING = "processing", "Processing"
        RETRYING = "retrying", "Failed, will retry"
        SENT = "sent", "Sent"
        DEAD = "dead", "Dead (gave up)"
        CANCELLED = "cancelled", "Cancelled"

    class Kind(models.TextChoices):
        TEMPLATE = "template", "Template"
        RAW = "raw", "Subject and HTML given"

    # Statuses a drain may claim once send_after has passed.
    WAITING_STATUSES = (Status.QUEUED, Status.RETRYING)
    FINISHED_STATUSES = (Status.SENT, Status.DEAD, Status.CANCELLED)

    # Public id: the Message-ID of the e-mail, so a receiver can drop a resend after a crash.
    # Not indexed: nothing looks a message up by it, and every index costs each status change.
    uuid = models.UUIDField(default=uuid.uuid4, editable=False)
    recipient = models.CharField(max_length=254, help_text="E-mail address.")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.TEMPLATE)
    template = models.CharField(
        max_length=200,
        blank=True,
        help_text="Template folder under templates/emails/, e.g. billing/rent_reminder (template e-mails).",
    )
    # A raw e-mail's parts, stored as they will be sent: the HTML sanitised, the text given or
    # read from that HTML (notifications.email.html). Empty for template e-mails.
    subject = models.CharField(max_length=255, blank=True)
    html = models.TextField(blank=True)
    text = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    language = models.CharField(
        max_length=16, blank=True, help_text="Language code to render in; empty means LANGUAGE_CODE."
    )
    dedupe_key = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        help_text="Enqueueing the same key again is a no-op: one message per key, ever.",
    )  # unique through NotificationKey, not an index here (see there)
    attachments = models.JSONField(
        default=list,
        blank=True,
        help_text="Files by reference (storage and name), read when the message is sent.",
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    send_after = models.DateTimeField(help_text="Not sent before this time (also the next retry time).")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Send attempts started so far.")
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a drain last claimed it.")
    claim_token = models.UUIDField(null=True, blank=True, editable=False)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="processing") | Q(claimed_at__isnull=False),
                name="notifications_notification_processing_is_claimed",
            ),
            # A template e-mail names its template; a raw one carries its subject and text.
            models.CheckConstraint(
                condition=Q(kind="template", template__gt="") | Q(kind="raw", subject__gt="", text__gt=""),
                name="notifications_notification_kind_has_content",
            ),
        ]
        indexes = [
            # process-notifications: waiting messages that are due, oldest due first.
            models.Index(
                fields=["send_after", "id"],
                condition=Q(status__in=["queued", "retrying"]),
                name="notifications_due",
            ),
            # process-notifications: processing messages whose sender died (claimed_at < now - 15 min).
            models.Index(
                fields=["claimed_at"],
                condition=Q(status="processing"),
                name="notifications_processing",
            ),
            # purge-logs: finished messages older than the retention period.
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["sent", "dead", "cancelled"]),
                name="notifications_finished",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template or self.subject[:60]} to {self.recipient} ({self.status})"


class MailServerState(models.Model):
    """What the drains last learned about the mail server, for /health/ (which connects to
    nothing itself). One row: a drain that could not use the server sets ``failing_since``
    (kept from the first failure of an outage), and the next drain that sends clears it."""

    name = models.CharField(max_length=20, primary_key=True, default="default")
    failing_since = models.DateTimeField(null=True, blank=True, help_text="Set while the mail server is unusable.")
    last_failure_at = models.DateTimeField(null=True, blank=True)
    deferred = models.PositiveIntegerField(default=0, help_text="Messages the last failing drain deferred.")
    last_error = models.TextField(blank=True, help_text="Why the last failing drain stopped (redacted).")
    recovered_at = models.DateTimeField(null=True, blank=True, help_text="When a drain last ended an outage.")

    class Meta:
        verbose_name = "mail server state"

    def __str__(self) -> str:
        if self.failing_since is None:
            return "mail server ok"
        return f"mail server failing since {self.failing_since:%Y-%m-%d %H:%M}"


class NotificationKey(models.Model):
    """The dedupe key of one notification: its primary key makes "one message per key" hold.

    A table of its own rather than a unique index on ``Notification.dedupe_key``: a drain
    rewrites each message twice (claimed, then sent), every rewrite of a row whose status
    changes inserts a new entry into each of its table's unique indexes, and that unique
    index cost the drain ~6 us of PostgreSQL CPU per message (measured, a tenth of the
    drain's whole cost). This row is written once, at enqueue, and deleted with its message.
    """

    key = models.CharField(max_length=200, primary_key=True)
    notification = models.OneToOneField(Notification, on_delete=models.CASCADE, related_name="dedupe")

    def __str__(self) -> str:
        return self.key


class WebhookEndpoint(models.Model):
    """A URL that receives signed POSTs for the events it subscribes to."""

    name = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500, help_text="http(s) only; private and loopback addresses are refused.")
    # Shared with the receiver, who verifies the Cronhouse-Signature header with it.
    secret = models.CharField(max_length=200, default=_signing_secret, help_text="Signing secret (HMAC-SHA256).")
    events = models.JSONField(
        default=list,
        blank=True,
        help_text='Event names, e.g. ["payout.created"]; "billing.*" matches a prefix, "*" every event.',
    )
    active = models.BooleanField(default=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def subscribes_to(self, event: str) -> bool:
        for pattern in self.events or []:
            if pattern == "*" or pattern == event:
                return True
            if pattern.endswith(".*") and event.startswith(pattern[:-1]):
                return True
        return False


class WebhookDelivery(models.Model):
    """One event for one endpoint: recorded first, then sent, then its result recorded."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        RETRYING = "retrying", "Failed, will retry"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead (gave up)"

    WAITING_STATUSES = (Status.PENDING, Status.RETRYING)
    FINISHED_STATUSES = (Status.DELIVERED, Status.DEAD)

    # Sent as Cronhouse-Delivery and in the body, so receivers can drop duplicates.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(help_text="When the next attempt is due.")
    claimed_at = models.DateTimeField(null=True, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The start of the last response body (bounded).")
    duration = models.DurationField(null=True, blank=True, help_text="Of the last attempt.")
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "webhook deliveries"
        indexes = [
            # retry-webhooks: deliveries due, and sending ones whose sender died.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "retrying", "sending"]),
                name="notifications_delivery_due",
            ),
            # purge-logs: finished deliveries older than the retention period.
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["delivered", "dead"]),
                name="notifications_delivery_done",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.endpoint_id} ({self.status})"

    @property
    def duration_ms(self) -> int | None:
        return None if self.duration is None else int(self.duration / timedelta(milliseconds=1))
