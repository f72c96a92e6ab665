"""What the job platform keeps beside jobs and runs: the audit log of staff changes, the system
log of platform events, and the heartbeat rows of long-lived processes."""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from jobs.models.jobs import Job


class AuditEntry(models.Model):
    """Who changed which job, handler or schedule, when, and what."""

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        RUN = "run"
        # Stored values kept from before "pause" was the state's one name; shown as resume/pause.
        ENABLE = "enable", "resume"
        DISABLE = "disable", "pause"
        REVOKE = "revoke"
        CANCEL = "cancel"
        OTHER = "other"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=150, blank=True, help_text="Username, or the process for system changes.")
    action = models.CharField(max_length=10, choices=Action.choices)
    object_type = models.CharField(max_length=50)
    object_id = models.CharField(max_length=50, blank=True)
    object_repr = models.CharField(max_length=200)
    changes = models.JSONField(default=dict, blank=True, help_text="Field: [before, after].")
    # The API key that acted (its name is in actor_label too, so the entry outlives the key).
    # Never the key itself: only its row.
    api_key = models.ForeignKey(
        "jobs.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name="API key"
    )
    address = models.CharField(max_length=64, blank=True, help_text="Client address of the request.")
    refused = models.CharField(
        max_length=200, blank=True, help_text="Why the attempt was refused; empty when it was allowed."
    )

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            # A job's own actions, newest first: the dashboard's job page.
            models.Index(fields=["object_type", "object_id", "-at"], name="jobs_auditentry_object"),
            # ON DELETE SET NULL when a key row is deleted; most entries have no key.
            models.Index(fields=["api_key"], condition=models.Q(api_key__isnull=False), name="jobs_auditentry_key"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type} {self.object_repr}"


class SystemLog(models.Model):
    """Job-platform events worth keeping beside the audit log: retention results, alerts sent,
    messages given up on. Written through ``jobs.operations.logs.system_log``; kept for
    JOBS_AUDIT_RETENTION_DAYS, then deleted by audit-log-cleanup."""

    class Level(models.TextChoices):
        INFO = "info"
        WARNING = "warning"
        ERROR = "error"

    at = models.DateTimeField(default=timezone.now)
    level = models.CharField(max_length=8, choices=Level.choices, default=Level.INFO)
    event = models.CharField(max_length=60, help_text="Machine-readable kind, e.g. audit_log_cleanup.")
    message = models.TextField()
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    data = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            # audit-log-cleanup deletes by age; the admin lists newest first.
            models.Index(fields=["at"], name="jobs_systemlog_at"),
            # The admin's filter by event.
            models.Index(fields=["event", "-at"], name="jobs_systemlog_event"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.level} {self.event}: {self.message[:80]}"


class ServiceHeartbeat(models.Model):
    """When a long-lived process (the leading beat) last proved it is alive; read by /health/."""

    name = models.CharField(max_length=50, unique=True)
    seen_at = models.DateTimeField()
    host = models.CharField(max_length=200, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    clock_offset_seconds = models.FloatField(
        null=True,
        blank=True,
        verbose_name="clock offset (s)",
        help_text="The process's clock minus the database's when it last wrote this row.",
    )

    def __str__(self) -> str:
        return f"{self.name} {self.seen_at:%Y-%m-%d %H:%M:%S}"


class LeaderLease(models.Model):
    """Which beat fires schedules (``jobs.scheduling.leader``). The holder renews ``expires_at`` about once
    a second; a standby takes the lease once it has expired, so a leader that dies or hangs loses
    it within the lease's length. Every transaction that records slots renews it first, under the
    row's lock, so a leader that lost it (hung, then resumed) records nothing."""

    name = models.CharField(max_length=50, unique=True)
    holder = models.CharField(max_length=200, help_text="host:pid:token of the beat holding the lease.")
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder} until {self.expires_at:%Y-%m-%d %H:%M:%S}"
