"""The job platform's tables: what to run, every run, webhook handlers, the audit log."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .schedules import describe_schedule, validate_cron_expression, validate_timezone


class WebhookHandler(models.Model):
    """An external URL a job calls instead of a management command (executed in a later issue)."""

    class Method(models.TextChoices):
        POST = "POST"
        PUT = "PUT"
        GET = "GET"

    class Auth(models.TextChoices):
        NONE = "none", "No authentication"
        BEARER = "bearer", "Bearer token"
        BASIC = "basic", "HTTP basic"
        API_KEY = "api_key", "API key header"
        CUSTOM_HEADER = "custom_header", "Custom header"

    name = models.SlugField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    method = models.CharField(max_length=6, choices=Method.choices, default=Method.POST)
    auth = models.CharField(max_length=20, choices=Auth.choices, default=Auth.NONE)
    auth_username = models.CharField(max_length=200, blank=True, help_text="For basic auth.")
    auth_header_name = models.CharField(
        max_length=100, blank=True, help_text="Header carrying the secret for API-key or custom-header auth."
    )
    # Write-only: never rendered, listed or exported; encryption at rest comes with execution.
    secret = models.TextField(blank=True, editable=False)
    extra_headers = models.JSONField(default=dict, blank=True)
    timeout_seconds = models.PositiveIntegerField(default=30)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(timeout_seconds__gte=1) & Q(timeout_seconds__lte=600),
                name="jobs_webhookhandler_timeout_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Job(models.Model):
    """A scheduled piece of work. The row is the source of truth for its PeriodicTask."""

    class Status(models.TextChoices):
        IDLE = "idle"
        RUNNING = "running"
        FAILED = "failed"
        DISABLED = "disabled"

    class AlertState(models.TextChoices):
        OK = "ok", "OK"
        FAILING = "failing", "Failure reported"
        ESCALATED = "escalated", "Escalated"

    name = models.SlugField(max_length=100, unique=True, help_text="Stable identifier, e.g. generate-charges.")
    description = models.TextField(blank=True)
    command = models.CharField(
        max_length=100, blank=True, help_text="Management command this job runs (its name, e.g. clearsessions)."
    )
    webhook_handler = models.ForeignKey(
        WebhookHandler, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    cron_expression = models.CharField(
        max_length=100,
        blank=True,
        validators=[validate_cron_expression],
        help_text="Five fields: minute hour day-of-month month day-of-week. Leave empty for an interval.",
    )
    timezone = models.CharField(
        max_length=63, default="UTC", validators=[validate_timezone], help_text="The cron is read in this zone."
    )
    interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Run every N seconds instead of on a cron schedule."
    )
    config = models.JSONField(default=dict, blank=True, help_text="Options passed to the command.")
    enabled = models.BooleanField(default=True)
    timeout_seconds = models.PositiveIntegerField(default=3600, help_text="A run is stopped after this long.")
    max_retries = models.PositiveSmallIntegerField(default=0, help_text="Extra attempts after a failure.")
    retry_backoff_seconds = models.PositiveIntegerField(
        default=60, help_text="Wait before the first retry; doubles for each further attempt."
    )
    expected_duration_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Runs longer than this are flagged as slow."
    )
    notify_on_failure = models.BooleanField(default=True)
    escalate_after_failures = models.PositiveSmallIntegerField(
        default=3,
        help_text="Send one escalation e-mail after this many consecutive failed runs (with notify on failure).",
    )

    # What staff were last told about this job (the notifications app keeps it): one failure
    # e-mail per failing streak, one escalation, one recovery, so a failing job does not flood.
    alert_state = models.CharField(max_length=10, choices=AlertState.choices, default=AlertState.OK, editable=False)
    alert_state_changed_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Statistics the runner keeps so lists need no aggregate over JobRun.
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_status = models.CharField(max_length=12, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_duration = models.DurationField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)

    # What seed_jobs last wrote, so it can tell an admin's edit from its own old default.
    seed_defaults = models.JSONField(default=dict, blank=True, editable=False)

    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, editable=False, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=(Q(cron_expression="") & Q(interval_seconds__isnull=False))
                | (~Q(cron_expression="") & Q(interval_seconds__isnull=True)),
                name="jobs_job_exactly_one_schedule",
            ),
            models.CheckConstraint(
                condition=(Q(command="") & Q(webhook_handler__isnull=False))
                | (~Q(command="") & Q(webhook_handler__isnull=True)),
                name="jobs_job_exactly_one_handler",
            ),
            models.CheckConstraint(condition=Q(timeout_seconds__gte=1), name="jobs_job_timeout_positive"),
            models.CheckConstraint(
                condition=Q(interval_seconds__isnull=True) | Q(interval_seconds__gte=1),
                name="jobs_job_interval_positive",
            ),
            models.CheckConstraint(
                condition=Q(escalate_after_failures__gte=1), name="jobs_job_escalate_after_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        if bool(self.cron_expression) == bool(self.interval_seconds):
            errors["cron_expression"] = "Give either a cron expression or an interval in seconds, not both."
        if bool(self.command) == bool(self.webhook_handler_id):
            errors["command"] = "Choose either a management command or a webhook handler."
        if errors:
            raise ValidationError(errors)

    @property
    def handler_label(self) -> str:
        return self.command or f"webhook:{self.webhook_handler}"

    @property
    def schedule_description(self) -> str:
        return describe_schedule(self.cron_expression, self.interval_seconds, self.timezone)

    def backoff_for_attempt(self, attempt: int) -> timedelta:
        """Wait before attempt ``attempt + 1``: backoff, 2x backoff, 4x backoff, ..."""
        return timedelta(seconds=self.retry_backoff_seconds * 2 ** max(attempt - 1, 0))

    def status(self, active_run_exists: bool) -> str:
        if not self.enabled:
            return self.Status.DISABLED
        if active_run_exists:
            return self.Status.RUNNING
        if self.last_run_status in JobRun.FAILURE_STATUSES:
            return self.Status.FAILED
        return self.Status.IDLE


class JobRun(models.Model):
    """One attempt at running a job, from trigger to result."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"
        TIMED_OUT = "timed_out", "Timed out"
        ABANDONED = "abandoned"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        API = "api"
        CLI = "cli"
        RETRY = "retry"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    FAILURE_STATUSES = (Status.FAILED, Status.TIMED_OUT, Status.ABANDONED)

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="runs")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    triggered_by = models.CharField(max_length=10, choices=Trigger.choices)
    triggered_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scheduled_for = models.DateTimeField(null=True, blank=True, help_text="The schedule slot this run belongs to.")
    attempt = models.PositiveSmallIntegerField(default=1)
    retry_of = models.OneToOneField("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retried_by")
    options = models.JSONField(default=dict, blank=True, help_text="Per-run options such as as_of and dry_run.")
    skip_reason = models.CharField(max_length=200, blank=True)
    blocked_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The active run that caused this trigger to be skipped.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    not_before = models.DateTimeField(null=True, blank=True, help_text="A retry waits until this time.")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration = models.DurationField(null=True, blank=True)

    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    output = models.TextField(blank=True)
    worker_host = models.CharField(max_length=200, blank=True)
    worker_pid = models.PositiveIntegerField(null=True, blank=True)
    celery_task_id = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = "created_at"
        constraints = [
            # Invariant 1: at most one queued-or-running run per job; a pending retry is queued,
            # so it holds the slot too.
            models.UniqueConstraint(
                fields=["job"],
                condition=Q(status__in=["queued", "running"]),
                name="jobs_jobrun_one_active_per_job",
            ),
            # Invariant 2: two beats firing the same slot make one run (per attempt, so a
            # scheduled run's retries share its slot).
            models.UniqueConstraint(
                fields=["job", "scheduled_for", "attempt"],
                condition=Q(scheduled_for__isnull=False),
                name="jobs_jobrun_one_run_per_slot",
            ),
            models.CheckConstraint(condition=Q(attempt__gte=1), name="jobs_jobrun_attempt_positive"),
            models.CheckConstraint(
                condition=~Q(status="skipped") | ~Q(skip_reason=""), name="jobs_jobrun_skip_has_reason"
            ),
        ]
        indexes = [
            # Run history of one job, newest first (job page, `manage.py jobs`).
            models.Index(fields=["job", "-created_at"], name="jobs_jobrun_job_created"),
            # process-jobs: queued runs to dispatch and running runs to reap.
            models.Index(
                fields=["status", "created_at"],
                condition=Q(status__in=["queued", "running"]),
                name="jobs_jobrun_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job.name} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES


class AuditEntry(models.Model):
    """Who changed which job, handler or schedule, when, and what."""

    class Action(models.TextChoices):
        CREATE = "create"
        UPDATE = "update"
        DELETE = "delete"
        RUN = "run"
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

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action} {self.object_type} {self.object_repr}"


class SystemLog(models.Model):
    """Job-platform events worth keeping beside the audit log: retention results, alerts sent,
    messages given up on. Written through ``jobs.logs.system_log``; kept for
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
