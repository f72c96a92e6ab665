"""Alert channels: where alerts about jobs go, which jobs go where, and each alert's delivery.

An ``AlertChannel`` is one destination: an e-mail list, a Slack-compatible incoming webhook, a
signed webhook (an existing ``WebhookEndpoint``), or a PagerDuty Events v2 integration. An
``AlertRoute`` names a channel for a job, an operator group or an app; a job with no route
keeps the default (JOBS_ALERT_RECIPIENTS, else the superusers). An ``AlertDelivery`` is one alert
for one chat or incident channel: recorded first, sent by a worker, retried with backoff, with
the result of its last attempt. E-mail channels use the e-mail queue and signed webhooks their
``WebhookDelivery`` rows, so each kind of channel has its own durable queue and none waits for
another (a mail outage leaves chat and incident alerts going out).

Imported by ``models.py``, so these are models of the notifications app.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q

from jobs.models import Job

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
WEEK_SECONDS = 7 * 86400


class AlertChannel(models.Model):
    """One place alerts go. Its secret (a Slack webhook URL, a PagerDuty routing key) is stored
    encrypted (``core.crypto``), is write-only in the admin and masked in every log line."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail list"
        SLACK = "slack", "Slack-compatible incoming webhook"
        WEBHOOK = "webhook", "Signed webhook (an outgoing webhook endpoint)"
        PAGERDUTY = "pagerduty", "PagerDuty Events v2"

    # Kinds whose alerts are AlertDelivery rows (the others use the e-mail and webhook queues).
    DELIVERY_KINDS = (Kind.SLACK, Kind.PAGERDUTY)

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    active = models.BooleanField(default=True, help_text="An inactive channel receives nothing.")
    recipients = models.TextField(blank=True, help_text="E-mail list: addresses, separated by commas.")
    url = models.URLField(
        max_length=500,
        blank=True,
        help_text=f"PagerDuty: the events API URL ({PAGERDUTY_EVENTS_URL}). Goes through the outbound guard.",
    )
    # A Fernet token: Slack: the incoming-webhook URL (its path is the credential);
    # PagerDuty: the integration's routing key. Never shown, never logged.
    secret = models.TextField(blank=True, editable=False)
    endpoint = models.ForeignKey(
        "notifications.WebhookEndpoint",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="alert_channels",
        help_text="Signed webhook: the endpoint that receives job.alert events, signed with its secret.",
    )
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # Each kind carries what it needs to send, so a saved channel can always be tried.
            models.CheckConstraint(
                condition=Q(kind="email", recipients__gt="")
                | Q(kind="slack", secret__gt="")
                | Q(kind="webhook", endpoint__isnull=False)
                | Q(kind="pagerduty", secret__gt="", url__gt=""),
                name="notifications_alertchannel_kind_configured",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    def recipient_list(self) -> list[str]:
        return [address.strip() for address in self.recipients.split(",") if address.strip()]


class AlertRoute(models.Model):
    """Sends the alerts of a job, of the jobs limited to an operator group, or of an app's jobs
    to a channel. Exactly one of job, group and app is set (a database rule)."""

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="routes")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    group = models.ForeignKey(
        Group,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The jobs limited to this operator group.",
    )
    app = models.CharField(
        max_length=100, blank=True, help_text="The jobs of this app (its label: billing, accounts, webhooks, ...)."
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(job__isnull=False, group__isnull=True, app="")
                | Q(job__isnull=True, group__isnull=False, app="")
                | Q(job__isnull=True, group__isnull=True, app__gt=""),
                name="notifications_alertroute_one_target",
            ),
            models.UniqueConstraint(fields=["channel", "job"], name="notifications_alertroute_job_unique"),
            models.UniqueConstraint(fields=["channel", "group"], name="notifications_alertroute_group_unique"),
            models.UniqueConstraint(
                fields=["channel", "app"], condition=~Q(app=""), name="notifications_alertroute_app_unique"
            ),
        ]
        indexes = [
            # routing: the routes of one job (and of its groups, and of its app) as an alert is raised.
            models.Index(fields=["job"], condition=Q(job__isnull=False), name="notifications_route_job"),
            models.Index(fields=["group"], condition=Q(group__isnull=False), name="notifications_route_group"),
        ]

    def __str__(self) -> str:
        target = f"job {self.job}" if self.job_id else f"group {self.group}" if self.group_id else f"app {self.app}"
        return f"{target} -> {self.channel.name}"


class AlertDelivery(models.Model):
    """One alert for one Slack or PagerDuty channel: recorded first, then sent, then its result
    recorded. ``payload`` is the body as sent, without the channel's secret (added when sending)."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        RETRYING = "retrying", "Failed, will retry"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead (gave up)"
        FOLDED = "folded", "Sent in a digest"

    WAITING_STATUSES = (Status.PENDING, Status.RETRYING)
    FINISHED_STATUSES = (Status.DELIVERED, Status.DEAD, Status.FOLDED)
    UNFINISHED_STATUSES = (Status.PENDING, Status.RETRYING, Status.SENDING)

    channel = models.ForeignKey(AlertChannel, on_delete=models.CASCADE, related_name="deliveries")
    alert = models.CharField(max_length=20, help_text="failed, escalated, recovered, late, late_recovered, slow, test.")
    job_name = models.CharField(max_length=100, blank=True)
    summary = models.CharField(max_length=300, blank=True, help_text="The alert in one line (a digest lists these).")
    # A burst: the channel had NOTIFICATIONS_ALERT_DIGEST_AFTER alerts within the digest window,
    # so this one waits for the window's end and goes out in one digest message with the others.
    digest = models.BooleanField(default=False, help_text="Held for the channel's digest message.")
    digest_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.CASCADE,  # its folded alerts were sent in it, and go with it
        related_name="folded",
        help_text="The delivery whose digest message carried this alert.",
    )
    # One delivery per (channel, key): a repeated signal records nothing new.
    dedupe_key = models.CharField(max_length=200)
    # PagerDuty's dedup_key: a resolve waits until the trigger with the same key is delivered
    # or dead, so a recovery never arrives before the incident it resolves.
    incident_key = models.CharField(max_length=200, blank=True)
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
        verbose_name_plural = "alert deliveries"
        constraints = [
            models.UniqueConstraint(fields=["channel", "dedupe_key"], name="notifications_alertdelivery_once"),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(claimed_at__isnull=False),
                name="notifications_alertdelivery_sending_is_claimed",
            ),
            models.CheckConstraint(
                condition=~Q(status="folded") | Q(digest_into__isnull=False),
                name="notifications_alertdelivery_folded_has_digest",
            ),
        ]
        indexes = [
            # the alert sweep (process-notifications): deliveries due, and sending ones whose sender died.
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "retrying", "sending"]),
                name="notifications_alert_due",
            ),
            # purge-logs: finished deliveries older than the retention period.
            models.Index(
                fields=["created_at"],
                condition=Q(status__in=["delivered", "dead", "folded"]),
                name="notifications_alert_done",
            ),
            # the digest: a channel's alerts of the last minute, and its held ones.
            models.Index(fields=["channel", "created_at"], name="notifications_alert_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.alert} {self.job_name} to {self.channel_id} ({self.status})"

    @property
    def duration_ms(self) -> int | None:
        return None if self.duration is None else int(self.duration / timedelta(milliseconds=1))


class AlertThreshold(models.Model):
    """When a job's failures become an incident staff are told about: after N final failures in a
    row (default NOTIFICATIONS_ALERT_AFTER_FAILURES, 1: the first), or after M final failures
    within a window, passes in between or not (default NOTIFICATIONS_ALERT_FAILURES_IN_WINDOW,
    0: off). A flaky job that usually passes on its next run can wait for its second or third
    failure in a row; one that fails every other run still opens an incident by the window."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="+")
    failures_before_alert = models.PositiveSmallIntegerField(
        default=1, help_text="Alert when this many runs in a row have failed (1: at the first failure)."
    )
    failures_in_window = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Alert when this many runs have failed within the window, in a row or not. "
        "Empty: NOTIFICATIONS_ALERT_FAILURES_IN_WINDOW (0: only failures in a row count).",
    )
    window_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="The window of the rule above, in seconds (at most a week). "
        "Empty: NOTIFICATIONS_ALERT_FAILURE_WINDOW_SECONDS.",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(failures_before_alert__gte=1), name="notifications_alertthreshold_at_least_one"
            ),
            models.CheckConstraint(
                condition=Q(failures_in_window__isnull=True) | Q(failures_in_window__lte=1000),
                name="notifications_alertthreshold_window_failures_range",
            ),
            models.CheckConstraint(
                condition=Q(window_seconds__isnull=True) | Q(window_seconds__gte=60, window_seconds__lte=WEEK_SECONDS),
                name="notifications_alertthreshold_window_range",
            ),
        ]

    def __str__(self) -> str:
        text = f"{self.job}: alert after {self.failures_before_alert} failure(s) in a row"
        if self.failures_in_window:
            text += f" or {self.failures_in_window} within {self.window_seconds or 'the default'} s"
        return text


@dataclass(frozen=True)
class FailureThresholds:
    """A job's thresholds with the defaults filled in; ``in_window`` 0: that rule is off."""

    in_a_row: int
    in_window: int
    window: timedelta


def failure_thresholds(job_id: int) -> FailureThresholds:
    """The job's AlertThreshold, the settings' defaults where it has none (one query)."""
    row = (
        AlertThreshold.objects.filter(job_id=job_id)
        .values("failures_before_alert", "failures_in_window", "window_seconds")
        .first()
    ) or {}
    in_window = row.get("failures_in_window")
    seconds = row.get("window_seconds") or settings.NOTIFICATIONS_ALERT_FAILURE_WINDOW_SECONDS
    return FailureThresholds(
        in_a_row=row.get("failures_before_alert") or settings.NOTIFICATIONS_ALERT_AFTER_FAILURES,
        in_window=settings.NOTIFICATIONS_ALERT_FAILURES_IN_WINDOW if in_window is None else in_window,
        window=timedelta(seconds=seconds),
    )


def digest_after() -> int:
    return settings.NOTIFICATIONS_ALERT_DIGEST_AFTER


def digest_window() -> timedelta:
    return timedelta(seconds=settings.NOTIFICATIONS_ALERT_DIGEST_SECONDS)


def alert_max_attempts() -> int:
    return settings.NOTIFICATIONS_ALERT_MAX_ATTEMPTS


def alert_backoff(attempt: int) -> timedelta:
    """30 s after a first failed attempt, then x3 each time, at most 15 minutes: an alert that
    waits an hour has lost most of its worth, and a receiver that is down comes back in minutes."""
    base = settings.NOTIFICATIONS_ALERT_RETRY_BASE_SECONDS
    return timedelta(seconds=min(base * 3 ** max(attempt - 1, 0), 900))
