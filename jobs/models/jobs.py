"""The job platform's main tables: webhook handlers, jobs (what to run, when) and every run."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from jobs.scheduling.beat_rows import Schedule, task_schedule
from jobs.scheduling.cron import MAX_INTERVAL_SECONDS, describe_schedule, next_fire, schedule_errors

DEFAULT_CATCH_UP_LIMIT = 10
# A job's schedule as its properties name it (stored in its PeriodicTask's rows, not as columns).
SCHEDULE_NAMES = ("cron_expression", "timezone", "interval_seconds")
# Bounds of a job's numbers, in forms (the model's validators) and in the database (the
# jobs_job_*_range constraints): every value a form accepts must fit every date computed from
# it, on every page, and mean something for a job.
WEEK = 7 * 86400
MAX_TIMEOUT_SECONDS = WEEK
MAX_RETRIES = 25
MAX_RETRY_BACKOFF_SECONDS = 86400
# The wait before a retry doubles per attempt up to this (25 doublings of a day would be 90,000 years).
MAX_RETRY_DELAY_SECONDS = WEEK
MAX_EXPECTED_DURATION_SECONDS = WEEK
MAX_GRACE_SECONDS = MAX_INTERVAL_SECONDS
MAX_CATCH_UP_LIMIT = 1000
MAX_ESCALATE_AFTER_FAILURES = 1000
DEFAULT_CHAIN_DEADLINE_SECONDS = 6 * 3600
# A job's "allow up to N concurrent runs": each active run holds one lane, 0 to N - 1.
MAX_CONCURRENT_RUNS = 50
# The lane of the one run that waits for the active run to end (overlap "queue one" and "replace").
WAITING_LANE = -1
# A scheduled run's message waits in the worker for its jitter (Celery's countdown); well inside
# the Redis broker's visibility timeout (an hour), after which an unacknowledged message is
# delivered again.
MAX_JITTER_SECONDS = 900


def between(low: int, high: int, what: str = "") -> list:
    """The validators of a bounded number; ``what`` replaces the "at most" message."""
    upper = MaxValueValidator(high, message=what) if what else MaxValueValidator(high)
    return [MinValueValidator(low), upper]


def in_range(field: str, low: int, high: int, *, nullable: bool = False) -> models.CheckConstraint:
    """The database's copy of ``between``: ``jobs_job_<field>_range``."""
    condition = Q(**{f"{field}__gte": low, f"{field}__lte": high})
    if nullable:
        condition |= Q(**{f"{field}__isnull": True})
    return models.CheckConstraint(condition=condition, name=f"jobs_job_{field}_range")


class WebhookHandler(models.Model):
    """An external URL a job calls instead of a management command (jobs/running/webhooks.py)."""

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
    # Write-only: never rendered, listed or exported; a Fernet token (core.crypto).
    secret = models.TextField(blank=True, editable=False)
    # Write-only like the secret (people put tokens in them): names in clear, each value a
    # Fernet token (core.crypto.secret_encrypt); shown and recorded as [redacted].
    extra_headers = models.JSONField(
        default=dict, blank=True, help_text="Header names and values sent with every call; values are write-only."
    )
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


class JobQuerySet(models.QuerySet):
    def due(self, now: datetime) -> JobQuerySet:
        """Enabled jobs whose next slot (``next_fire_at``) has come: what the leading beat records
        (jobs.scheduling.firing). A range scan of jobs_job_due."""
        return self.filter(enabled=True, next_fire_at__lte=now)

    def late(self, now: datetime) -> JobQuerySet:
        """The one definition of a *late* job, used by the dashboard, ``/api/jobs/status``,
        ``manage.py jobs``, ``/health/``, the metrics and the late alerts.

        A job is late when it is enabled, has a schedule, and the first slot beat owes it
        (``Job.next_fire_at``) has gone unrecorded for longer than its grace: ``Job.late_at <= now``.
        Beat moves both on in the transaction that records the slot (``jobs.scheduling.firing``), as a run or as a
        recorded skip, so a job is late exactly when its schedule is not being kept: beat or the
        database is down or behind. A run started by hand does not keep the schedule and does not
        clear it. A new, re-enabled or rescheduled job owes only the slots after that moment.

        Grace is the job's ``grace_seconds`` or, when empty, a tenth of the schedule's period clamped to
        [60 s, 1 h] (``jobs.scheduling.cron.next_fire``): an every-minute job is late after a minute, a daily
        one after an hour. Answering it is one range scan of jobs_job_late, however many jobs exist.
        """
        return self.filter(enabled=True, late_at__lte=now)

    def housekeeping(self) -> JobQuerySet:
        """The platform's upkeep jobs (queue drains, clean-ups): a handful of rows through the
        partial index jobs_job_housekeeping, read as the ``NOT IN`` list that keeps their runs
        out of run lists and the day's totals."""
        return self.filter(housekeeping=True)


class Job(models.Model):
    """A scheduled piece of work. Its schedule is its django-celery-beat PeriodicTask's crontab
    or interval row (jobs.scheduling.schedules); the row keeps what beat derives from it."""

    class Status(models.TextChoices):
        IDLE = "idle"
        RUNNING = "running"
        FAILED = "failed"
        PAUSED = "paused"

    class AlertState(models.TextChoices):
        OK = "ok", "OK"
        FAILING = "failing", "Failure reported"
        ESCALATED = "escalated", "Escalated"

    class CatchUp(models.TextChoices):
        LATEST = "latest", "Run the most recent missed slot once"
        SKIP = "skip", "Skip missed slots"
        ALL = "all", "Run every missed slot (up to the limit)"

    class WindowAction(models.TextChoices):
        SKIP = "skip", "Skip the slot"
        DEFER = "defer", "Run the slot at the window's end"

    class Overlap(models.TextChoices):
        SKIP = "skip", "Skip: record a trigger skipped while a run is active"
        QUEUE_ONE = "queue_one", "Queue one: keep at most one run waiting for the active one to end"
        REPLACE = "replace", "Replace: cancel the active run, then start the new one"
        ALLOW = "allow", "Allow up to N concurrent runs"

    objects = JobQuerySet.as_manager()

    name = models.SlugField(max_length=100, unique=True, help_text="Stable identifier, e.g. generate-charges.")
    description = models.TextField(blank=True)
    command = models.CharField(
        max_length=100, blank=True, help_text="Management command this job runs (its name, e.g. clearsessions)."
    )
    webhook_handler = models.ForeignKey(
        WebhookHandler, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    config = models.JSONField(default=dict, blank=True, help_text="Options passed to the command.")
    # False while paused: beat records no slot, lateness and late alerts stay quiet; a person
    # may still run it by hand. Every page, filter and message calls this state "paused".
    enabled = models.BooleanField(
        default=True,
        verbose_name="active (not paused)",
        help_text="Untick to pause: beat records no slot while paused; it can still be run by hand. "
        "The dashboard pauses with a reason and an optional end.",
    )
    # Who paused the job, why and until when (jobs.scheduling.pauses); empty while it is active.
    paused_at = models.DateTimeField(null=True, blank=True, editable=False)
    paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )
    paused_reason = models.CharField(max_length=200, blank=True, default="", db_default="", editable=False)
    paused_until = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="The job resumes by itself at this time (beat's housekeeping)."
    )
    timeout_seconds = models.PositiveIntegerField(
        default=3600,
        validators=between(1, MAX_TIMEOUT_SECONDS),
        help_text="A run is stopped after this long (at most a week).",
    )
    max_retries = models.PositiveSmallIntegerField(
        default=0, validators=between(0, MAX_RETRIES), help_text=f"Extra attempts after a failure (0 to {MAX_RETRIES})."
    )
    retry_backoff_seconds = models.PositiveIntegerField(
        default=60,
        validators=between(0, MAX_RETRY_BACKOFF_SECONDS),
        help_text="Wait before the first retry (at most a day); doubles for each further attempt, up to a week.",
    )
    expected_duration_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=between(1, MAX_EXPECTED_DURATION_SECONDS),
        help_text="Runs longer than this are flagged as slow (at most a week).",
    )
    notify_on_failure = models.BooleanField(default=True)
    # db_default too: rows written by bulk SQL (benchmarks, imports) name only the columns they know.
    housekeeping = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Platform upkeep (queue drains, clean-ups): its runs are left out of run lists and the "
        "day's totals unless asked for.",
    )
    grace_seconds = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=between(0, MAX_GRACE_SECONDS),
        help_text="A slot with no run this long after it is due makes the job late. "
        "Empty: a tenth of the schedule's period, at least 60 s and at most an hour.",
    )
    # blank: a form that leaves these out (older API clients, admin posts) keeps the default;
    # clean() fills it in.
    catch_up = models.CharField(
        max_length=6,
        choices=CatchUp.choices,
        default=CatchUp.LATEST,
        blank=True,
        help_text="What beat does with slots it missed while it (or the database) was down. Empty: latest.",
    )
    catch_up_limit = models.PositiveSmallIntegerField(
        default=DEFAULT_CATCH_UP_LIMIT,
        null=True,
        blank=True,
        validators=between(1, MAX_CATCH_UP_LIMIT),
        help_text="With 'run every missed slot': at most this many of the most recent missed slots. Empty: 10.",
    )
    # What a trigger does while a run of the job is active (docs/operations.md, "Overlap policy").
    # The database holds it: each active run takes a lane (JobRun.lane) that a partial unique
    # constraint keeps to one run (jobs_jobrun_one_active_per_lane).
    overlap = models.CharField(
        max_length=10,
        choices=Overlap.choices,
        default=Overlap.SKIP,
        db_default=Overlap.SKIP,
        blank=True,
        help_text="What a trigger does while a run of this job is queued or running. Empty: skip.",
    )
    # blank: a form that leaves it out keeps 1 (clean() fills it in), as with catch_up.
    max_concurrent = models.PositiveSmallIntegerField(
        default=1,
        db_default=1,
        blank=True,
        validators=between(1, MAX_CONCURRENT_RUNS),
        help_text=f"With 'allow up to N concurrent runs': N (1 to {MAX_CONCURRENT_RUNS}). Empty: 1.",
    )
    escalate_after_failures = models.PositiveSmallIntegerField(
        default=3,
        validators=between(1, MAX_ESCALATE_AFTER_FAILURES),
        help_text="Send one escalation e-mail after this many consecutive failed runs (with notify on failure).",
    )
    window_action = models.CharField(
        max_length=5,
        choices=WindowAction.choices,
        default=WindowAction.SKIP,
        db_default=WindowAction.SKIP,
        blank=True,
        help_text="What a slot inside one of the job's blackout windows does. Empty: skip.",
    )
    chain_deadline_seconds = models.PositiveIntegerField(
        default=DEFAULT_CHAIN_DEADLINE_SECONDS,
        db_default=DEFAULT_CHAIN_DEADLINE_SECONDS,
        validators=between(60, MAX_TIMEOUT_SECONDS),
        blank=True,
        help_text="With jobs to wait for: a run fails if they have not all succeeded for its period this long "
        "after it started waiting (at most a week). Empty: 6 hours.",
    )
    # Checked against the configured queues by jobs.catalog.validation, as every way in saves.
    queue = models.CharField(
        max_length=100,
        blank=True,
        default="",
        db_default="",
        help_text="The Celery queue its runs are sent to; workers take it with -Q. Empty: the default queue.",
    )
    jitter_seconds = models.PositiveIntegerField(
        default=0,
        db_default=0,
        validators=between(0, MAX_JITTER_SECONDS),
        help_text=f"Start each scheduled run up to this many seconds after its slot (0 to {MAX_JITTER_SECONDS}), "
        "at an offset fixed per job; the run still belongs to its slot.",
    )

    # What staff were last told about this job (the notifications app keeps it): one failure
    # e-mail per failing streak, one escalation, one recovery, so a failing job does not flood.
    alert_state = models.CharField(max_length=10, choices=AlertState.choices, default=AlertState.OK, editable=False)
    alert_state_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # The late episode staff were told about: the missed slot, set once per episode by
    # process-jobs (conditional UPDATE) and cleared with the recovery notice.
    late_since = models.DateTimeField(null=True, blank=True, editable=False)
    # When enabled / schedule last changed (null: never since creation). Slots before it are
    # neither late nor caught up, so re-enabling a job does not alert or replay old slots.
    schedule_changed_at = models.DateTimeField(null=True, blank=True, editable=False)
    # What beat fires next: the first slot it has not recorded yet, set from the schedule on
    # every save and moved on by the leader in the transaction that records the slot
    # (jobs.scheduling.firing). Null when disabled or never firing. late_at: when that slot counts as
    # missed (Job.objects.late).
    next_fire_at = models.DateTimeField(null=True, blank=True, editable=False)
    late_at = models.DateTimeField(null=True, blank=True, editable=False)

    # Statistics the runner keeps so lists need no aggregate over JobRun.
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_run_status = models.CharField(max_length=12, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_duration = models.DurationField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # Warnings of the last run (0: none): "succeeded with warnings" on every list and /health/.
    last_run_warnings = models.PositiveSmallIntegerField(default=0, editable=False)

    # What seed_jobs last wrote, so it can tell an admin's edit from its own old default.
    seed_defaults = models.JSONField(default=dict, blank=True, editable=False)

    # The job's schedule: its task's crontab (timezone included) or interval row. PROTECT: the
    # task, and a crontab or interval row it uses, outlive no job they schedule only through
    # the job's delete (jobs.scheduling.schedule_edits.job_deleted deletes the task after it).
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", null=True, blank=True, editable=False, on_delete=models.PROTECT
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        # Beside Django's add/change/delete/view_job: who may act on a job (docs/permissions.md).
        # Seeing a job's runs is jobs.view_jobrun; jobs.permissions.access decides with these and the job's groups.
        permissions = [
            ("run_job", "Can run a job now"),
            ("toggle_job", "Can pause or resume a job"),
            ("manage_schedule", "Can pause, resume, unschedule and purge beat tasks"),
            ("cancel_run", "Can cancel a queued or running run"),
        ]
        indexes = [
            # The leader's "which jobs are due?" (next_fire_at <= now) and "when is the next?".
            models.Index(fields=["next_fire_at"], condition=Q(enabled=True), name="jobs_job_due"),
            # "Which jobs are late?" (late_at <= now): one range scan, however many jobs exist.
            models.Index(fields=["late_at"], condition=Q(enabled=True), name="jobs_job_late"),
            # /health/'s "which jobs' last run warned?": a few names and a count, never a scan.
            models.Index(fields=["name"], condition=Q(last_run_warnings__gt=0), name="jobs_job_warned"),
            # Job.objects.housekeeping(): the few upkeep jobs whose runs lists leave out.
            models.Index(fields=["name"], condition=Q(housekeeping=True), name="jobs_job_housekeeping"),
            # Beat's "which pauses have ended?" (paused_until <= now): only the paused jobs with an end.
            models.Index(fields=["paused_until"], condition=Q(paused_until__isnull=False), name="jobs_job_pause_ends"),
            # /metrics' failing jobs (last run failed, timed out or abandoned): a few names and a count.
            models.Index(
                fields=["name"],
                condition=Q(last_run_status__in=["failed", "timed_out", "abandoned"]),
                name="jobs_job_failing",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(command="") & Q(webhook_handler__isnull=False))
                | (~Q(command="") & Q(webhook_handler__isnull=True)),
                name="jobs_job_exactly_one_handler",
            ),
            in_range("timeout_seconds", 1, MAX_TIMEOUT_SECONDS),
            in_range("max_retries", 0, MAX_RETRIES),
            in_range("retry_backoff_seconds", 0, MAX_RETRY_BACKOFF_SECONDS),
            in_range("expected_duration_seconds", 1, MAX_EXPECTED_DURATION_SECONDS, nullable=True),
            in_range("grace_seconds", 0, MAX_GRACE_SECONDS, nullable=True),
            in_range("catch_up_limit", 1, MAX_CATCH_UP_LIMIT, nullable=True),
            in_range("escalate_after_failures", 1, MAX_ESCALATE_AFTER_FAILURES),
            in_range("chain_deadline_seconds", 60, MAX_TIMEOUT_SECONDS),
            # A pause's end belongs to a paused job: an active job has nothing to resume.
            models.CheckConstraint(
                condition=Q(enabled=False) | Q(paused_until__isnull=True), name="jobs_job_pause_end_only_when_paused"
            ),
            in_range("max_concurrent", 1, MAX_CONCURRENT_RUNS),
            models.CheckConstraint(
                condition=Q(overlap__in=["skip", "queue_one", "replace", "allow"]), name="jobs_job_overlap_known"
            ),
            in_range("jitter_seconds", 0, MAX_JITTER_SECONDS),
        ]

    # What moves the next slot besides the schedule itself (which lives in the task's rows).
    SCHEDULE_FIELDS = ("enabled", "grace_seconds")
    # Written by beat (jobs.scheduling.firing) as it records slots, and by a schedule change.
    BEAT_FIELDS = ("next_fire_at", "late_at")

    def __str__(self) -> str:
        return self.name

    # -- the schedule, read from the task's rows ------------------------------------------------
    # Lists and beat fetch the rows with the jobs (select_related / prefetch_related of
    # jobs.scheduling.schedules.SCHEDULE_ROWS). Assigning one of these three stages a new
    # schedule that save() hands to jobs.scheduling.schedules.job_schedule_set, the one writer
    # (through the post_save receiver jobs.scheduling.schedule_edits.job_saved).

    def _schedule(self):
        if (pending := self.__dict__.get("_schedule_pending")) is not None:
            return Schedule(**pending)
        return task_schedule(self.periodic_task if self.periodic_task_id else None)

    def _schedule_stage(self, **change) -> None:
        pending = self.__dict__.get("_schedule_pending")
        if pending is None:
            current = self._schedule()
            pending = {
                "cron_expression": current.cron_expression,
                "timezone": current.timezone,
                "interval_seconds": current.interval_seconds,
            }
        self.__dict__["_schedule_pending"] = {**pending, **change}

    @property
    def cron_expression(self) -> str:
        """Five fields, minute hour day-of-month month day-of-week ("" for an interval)."""
        return self._schedule().cron_expression

    @cron_expression.setter
    def cron_expression(self, value: str) -> None:
        self._schedule_stage(cron_expression=value or "")

    @property
    def timezone(self) -> str:
        """The zone the cron expression is read in."""
        return self._schedule().timezone

    @timezone.setter
    def timezone(self, value: str) -> None:
        self._schedule_stage(timezone=value or "UTC")

    @property
    def interval_seconds(self) -> int | None:
        """Run every N seconds instead of on a cron schedule (None for a cron schedule)."""
        return self._schedule().interval_seconds

    @interval_seconds.setter
    def interval_seconds(self, value: int | None) -> None:
        self._schedule_stage(interval_seconds=value)

    def _schedule_pending_changes(self) -> dict | None:
        """The staged schedule, or None when nothing is staged or it is the stored one."""
        pending = self.__dict__.pop("_schedule_pending", None)
        if pending is None or self.periodic_task_id is None:
            return pending
        return None if self._schedule() == Schedule(**pending) else pending

    def refresh_from_db(self, *args, **kwargs) -> None:
        self.__dict__.pop("_schedule_pending", None)  # the stored schedule, as for every field
        super().refresh_from_db(*args, **kwargs)

    @classmethod
    def from_db(cls, db, field_names, values):
        job = super().from_db(db, field_names, values)
        if all(name in job.__dict__ for name in cls.SCHEDULE_FIELDS):  # not for .only() reads
            job._loaded_schedule = job._schedule_key()
        return job

    def _schedule_key(self) -> tuple:
        return tuple(self.__dict__.get(name) for name in self.SCHEDULE_FIELDS)

    # What an active job's pause columns hold: resuming (by any surface) clears them.
    NOT_PAUSED = {"paused_at": None, "paused_by": None, "paused_reason": "", "paused_until": None}

    def save(self, *args, **kwargs) -> None:
        pending = self._schedule_pending_changes()
        if self.enabled and (self.paused_until is not None or self.paused_reason or self.paused_by_id):
            # Ticked active again in a form: the pause (and its end) is over.
            for name, value in self.NOT_PAUSED.items():
                setattr(self, name, value)
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], *self.NOT_PAUSED}
        if kwargs.get("update_fields") is not None:  # update_or_create names what it assigned
            kwargs["update_fields"] = [name for name in kwargs["update_fields"] if name not in SCHEDULE_NAMES]
        loaded = getattr(self, "_loaded_schedule", None)
        changed = loaded is not None and loaded != self._schedule_key()
        if loaded is not None and not changed and kwargs.get("update_fields") is None:
            # An edit that leaves the slot alone (the admin saves every field) must not write
            # back the slot beat owes, which beat may have moved on since this was read; a new
            # schedule's slot is written by job_schedule_set below.
            kwargs["update_fields"] = [
                field.name
                for field in self._meta.concrete_fields
                if not field.primary_key and field.name not in self.BEAT_FIELDS
            ]
        elif pending is None and (self.pk is None or changed or (self.enabled and self.next_fire_at is None)):
            now = timezone.now()
            self.schedule_reset(now)
            moved = {"next_fire_at", "late_at"}
            if self.pk is not None and changed:
                self.schedule_changed_at = now
                moved.add("schedule_changed_at")
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], *moved}
        # Written by jobs.scheduling.schedule_edits.job_saved (post_save), inside this transaction:
        # a schedule the one writer refuses leaves no job row without it.
        self.__dict__["_schedule_write"] = (pending, changed)
        with transaction.atomic():
            super().save(*args, **kwargs)
        self._loaded_schedule = self._schedule_key()

    def schedule_reset(self, after) -> None:
        """Fire next at the schedule's first slot after ``after`` (none while disabled): a new,
        re-enabled or rescheduled job owes nothing for the slots before it, and beat moves a
        job on past the slot it recorded."""
        if not self.enabled:
            self.next_fire_at = self.late_at = None
            return
        schedule = self._schedule()
        upcoming = next_fire(
            schedule.cron_expression, schedule.interval_seconds, schedule.timezone, after, self.grace_seconds
        )
        self.next_fire_at, self.late_at = upcoming.at, upcoming.late_at

    @property
    def schedule_since(self):
        """Slots before this moment belong to another schedule (or a disabled job)."""
        return max(filter(None, (self.created_at, self.schedule_changed_at)))

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors = {}
        self.catch_up = self.catch_up or self.CatchUp.LATEST
        self.overlap = self.overlap or self.Overlap.SKIP
        if self.max_concurrent is None:
            self.max_concurrent = 1
        if self.catch_up_limit is None:
            self.catch_up_limit = DEFAULT_CATCH_UP_LIMIT
        self.window_action = self.window_action or self.WindowAction.SKIP
        if self.chain_deadline_seconds is None:
            self.chain_deadline_seconds = DEFAULT_CHAIN_DEADLINE_SECONDS
        schedule = self._schedule()
        errors.update(schedule_errors(schedule.cron_expression, schedule.timezone, schedule.interval_seconds))
        if bool(self.command) == bool(self.webhook_handler_id):
            errors["command"] = "Choose either a management command or a webhook handler."
        # Whether the command is allowed, with this config, is jobs.catalog.validation's to say.
        if errors:
            raise ValidationError(errors)

    @property
    def handler_label(self) -> str:
        return self.command or f"webhook:{self.webhook_handler}"

    @property
    def schedule_description(self) -> str:
        schedule = self._schedule()
        return describe_schedule(schedule.cron_expression, schedule.interval_seconds, schedule.timezone)

    def backoff_for_attempt(self, attempt: int) -> timedelta:
        """Wait before attempt ``attempt + 1``: backoff, 2x backoff, 4x backoff, ... up to a week."""
        # Integers first: the doubled wait of a late attempt would not fit a timedelta.
        seconds = self.retry_backoff_seconds * 2 ** min(max(attempt - 1, 0), 64)
        return timedelta(seconds=min(seconds, MAX_RETRY_DELAY_SECONDS))

    @property
    def jitter_offset(self) -> timedelta:
        """How long after each slot this job's scheduled runs start: a fraction of
        ``jitter_seconds`` fixed by the job's id, so it is the same in every process and after
        every restart, and jobs due at the same instant spread evenly over the window."""
        if not self.jitter_seconds or self.pk is None:
            return timedelta(0)
        digest = hashlib.sha256(f"jitter:{self.pk}".encode()).digest()
        fraction = int.from_bytes(digest[:8], "big") / 2**64
        return timedelta(milliseconds=int(fraction * self.jitter_seconds * 1000))

    def status(self, active_run_exists: bool) -> str:
        if not self.enabled:
            return self.Status.PAUSED
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
        # A slot's run of a chained job, recorded before the jobs it waits for have succeeded
        # for its period (jobs.running.chains); not active: it holds no worker and no job.
        WAITING = "waiting"
        CANCELLED = "cancelled"

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule"
        MANUAL = "manual"
        API = "api"
        CLI = "cli"
        RETRY = "retry"

    ACTIVE_STATUSES = (Status.QUEUED, Status.RUNNING)
    FAILURE_STATUSES = (Status.FAILED, Status.TIMED_OUT, Status.ABANDONED)

    # No index of its own: jobs_jobrun_job_created leads with job_id and serves every lookup
    # by job (and ON DELETE CASCADE), and each index costs a write on every status change.
    # Migration 0005 dropped the old one by name: on PostgreSQL, Django's AlterField to
    # db_index=False drops every single-column index on job_id, including the partial unique
    # index behind jobs_jobrun_one_active_per_lane. Never let Django alter this field's index.
    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="runs", db_index=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    triggered_by = models.CharField(max_length=10, choices=Trigger.choices)
    triggered_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    scheduled_for = models.DateTimeField(null=True, blank=True, help_text="The schedule slot this run belongs to.")
    attempt = models.PositiveSmallIntegerField(default=1)
    # The failed run this one retries: set by the runner for an automatic retry (the next
    # attempt of the same slot) and by a person's "Retry" (jobs.running.run_requests.run_retry,
    # attempt 1 as of the failed run's slot). Either way a run is retried at most once.
    # A foreign key with a partial unique constraint (jobs_jobrun_one_retry_per_run) rather
    # than a OneToOneField: a one-to-one's unique index holds an entry for every run, NULL
    # included, rewritten on every status change; the partial one holds retries only.
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    options = models.JSONField(default=dict, blank=True, help_text="Per-run options such as as_of and dry_run.")
    skip_reason = models.CharField(max_length=200, blank=True)
    # The blackout window that skipped or deferred this slot (its name, kept if the window goes).
    window_name = models.CharField(
        max_length=100, blank=True, default="", db_default="", help_text="The blackout window that held this slot."
    )
    # The place this run holds among its job's active runs (Job.overlap): 0 to max_concurrent - 1
    # while it may run, WAITING_LANE while it waits for the active run to end. Kept after the end.
    lane = models.SmallIntegerField(default=0, db_default=0, editable=False)
    # A cancel (jobs.running.cancels): when it was asked for, by whom (a username, an API key's
    # name, the command line, or the overlap policy) and why. A queued run ends cancelled at
    # once; a running one when its command stops, or when its worker kills it after the grace.
    cancel_requested_at = models.DateTimeField(null=True, blank=True, editable=False)
    cancelled_by = models.CharField(max_length=150, blank=True, default="", db_default="", editable=False)
    cancel_reason = models.CharField(max_length=200, blank=True, default="", db_default="", editable=False)
    blocked_by = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        help_text="The active run that caused this trigger to be skipped.",
    )

    # A person looked at this failure and took it off the failures list without retrying it
    # (jobs.running.triage.run_acknowledge): who, when and why.
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    # When this failure left the failures list: its retry was recorded (by a person, or by the
    # runner and then jobs.running.triage.failure_retried) or it was acknowledged. Kept on the
    # row so that the list's index (jobs_jobrun_open_failures) holds only the failures still open.
    triaged_at = models.DateTimeField(null=True, blank=True, editable=False)
    acknowledgement = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",
        help_text="The note of whoever acknowledged this failure.",
    )

    # Set by the runner (_runs_insert stamps every row of one INSERT alike), not auto_now_add.
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="A retry, or a scheduled run with jitter, waits until this time."
    )
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
    slow = models.BooleanField(default=False, help_text="Ran (or is running) longer than the job's expected duration.")
    # Written by JobCommand.progress at most about once a second while the run is running.
    progress_done = models.PositiveBigIntegerField(null=True, blank=True, help_text="Items done so far.")
    progress_total = models.PositiveBigIntegerField(null=True, blank=True, help_text="Items to do, when known.")
    # What a succeeded run did not do (JobCommand.warn): redacted, at most MAX_WARNINGS texts.
    warnings = models.JSONField(
        default=list, blank=True, help_text="Why a succeeded run did not do all its work (redacted)."
    )
    # The backfill whose next step waits for this run's end: a slot's run and its retries, or the
    # run that held a slot's run up. Null for every other run: its end touches no backfill.
    backfill = models.ForeignKey(
        "jobs.Backfill",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,
        help_text="The backfill this run's end moves on.",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        get_latest_by = "created_at"
        constraints = [
            # Invariant 1: at most one queued-or-running run per lane of a job (Job.overlap): one
            # lane under "skip", one plus the waiting lane under "queue one" and "replace", N under
            # "allow up to N". A pending retry is queued, so it holds its lane too.
            models.UniqueConstraint(
                fields=["job", "lane"],
                condition=Q(status__in=["queued", "running"]),
                name="jobs_jobrun_one_active_per_lane",
            ),
            models.CheckConstraint(
                condition=Q(lane__gte=WAITING_LANE) & Q(lane__lt=MAX_CONCURRENT_RUNS), name="jobs_jobrun_lane_range"
            ),
            # A run waiting in the waiting lane is queued: it never runs from there.
            models.CheckConstraint(
                condition=~Q(lane=WAITING_LANE) | ~Q(status="running"), name="jobs_jobrun_waiting_never_runs"
            ),
            # A cancelled run was asked to stop, by someone, for a reason.
            models.CheckConstraint(
                condition=~Q(status="cancelled") | (Q(cancel_requested_at__isnull=False) & ~Q(cancel_reason="")),
                name="jobs_jobrun_cancel_requested",
            ),
            # Invariant 2: two beats firing the same slot make one run (per attempt, so a
            # scheduled run's retries share its slot).
            models.UniqueConstraint(
                fields=["job", "scheduled_for", "attempt"],
                condition=Q(scheduled_for__isnull=False),
                name="jobs_jobrun_one_run_per_slot",
            ),
            # A run is retried at most once (its retry's own failure makes the next retry).
            # Also the index for filter(retry_of=...) and ON DELETE SET NULL.
            models.UniqueConstraint(
                fields=["retry_of"], condition=Q(retry_of__isnull=False), name="jobs_jobrun_one_retry_per_run"
            ),
            models.CheckConstraint(condition=Q(attempt__gte=1), name="jobs_jobrun_attempt_positive"),
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True) | Q(triaged_at__isnull=False),
                name="jobs_jobrun_acknowledged_is_triaged",
            ),
            # Only a failure is acknowledged, and always with a note saying why.
            models.CheckConstraint(
                condition=Q(acknowledged_at__isnull=True)
                | (Q(status__in=["failed", "timed_out", "abandoned"]) & ~Q(acknowledgement="")),
                name="jobs_jobrun_acknowledged_failure_with_note",
            ),
            models.CheckConstraint(
                condition=~Q(status="skipped") | ~Q(skip_reason=""), name="jobs_jobrun_skip_has_reason"
            ),
        ]
        indexes = [
            # Run history of one job, newest first (job page, `manage.py jobs`).
            models.Index(fields=["job", "-created_at"], name="jobs_jobrun_job_created"),
            # Every run, newest first (ORDER BY created_at DESC, id DESC LIMIT n): the admin's run
            # list and its bounded counts; also purge-logs' and the metrics' created_at ranges.
            models.Index(fields=["created_at", "id"], name="jobs_jobrun_created"),
            # The admin's search for a Celery task id (exact), as a worker's log names it.
            models.Index(fields=["celery_task_id"], name="jobs_jobrun_task"),
            # process-jobs: queued runs to dispatch and running runs to reap.
            models.Index(
                fields=["status", "created_at"],
                condition=Q(status__in=["queued", "running"]),
                name="jobs_jobrun_active",
            ),
            # jobs.running.chains: the runs waiting for their upstreams (a handful), oldest first.
            models.Index(fields=["job", "created_at"], condition=Q(status="waiting"), name="jobs_jobrun_waiting"),
            # ON DELETE SET NULL lookups (deleting a user, purging runs). Partial: most runs have
            # neither, and PostgreSQL adds no entry for a row outside the condition.
            models.Index(
                fields=["triggered_by_user"],
                condition=Q(triggered_by_user__isnull=False),
                name="jobs_jobrun_user",
            ),
            models.Index(fields=["blocked_by"], condition=Q(blocked_by__isnull=False), name="jobs_jobrun_blocked_by"),
            # ON DELETE SET NULL of a backfill; partial: only backfills' runs have one.
            models.Index(fields=["backfill"], condition=Q(backfill__isnull=False), name="jobs_jobrun_backfill"),
            models.Index(
                fields=["acknowledged_by"],
                condition=Q(acknowledged_by__isnull=False),
                name="jobs_jobrun_acknowledged_by",
            ),
            # The failures page (jobs.status.failures.failed_runs): failures not yet retried or
            # acknowledged, and retries waiting to run, newest first, a page at a time; its
            # condition is that query's filter, so handled failures (most of them, in time) are
            # not stepped over one by one.
            models.Index(
                fields=["-created_at", "-id"],
                condition=Q(status__in=["failed", "timed_out", "abandoned"], triaged_at__isnull=True)
                | Q(status="queued", triggered_by="retry"),
                name="jobs_jobrun_open_failures",
            ),
            # The admin's status filter on failed, timed out, abandoned runs, newest first.
            models.Index(
                fields=["-created_at", "-id"],
                condition=Q(status__in=["failed", "timed_out", "abandoned"]) | Q(status="queued", triggered_by="retry"),
                name="jobs_jobrun_failures",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.job.name} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE_STATUSES

    @property
    def cancellable(self) -> bool:
        """Whether a Cancel fits: queued, waiting for its upstreams or running, and nobody asked yet."""
        return self.status in (*self.ACTIVE_STATUSES, self.Status.WAITING) and self.cancel_requested_at is None

    @property
    def behind_active_run(self) -> bool:
        """Queued behind the job's active run (overlap "queue one" or "replace")."""
        return self.status == self.Status.QUEUED and self.lane == WAITING_LANE

    @property
    def cancel_text(self) -> str:
        """Who cancelled this run and why, as every page shows it ("" if nobody asked)."""
        if self.cancel_requested_at is None:
            return ""
        who = f" by {self.cancelled_by}" if self.cancelled_by else ""
        return f"cancelled{who}: {self.cancel_reason}"

    def retried_as(self) -> int | None:
        """The id of the run that retries this one (by the runner or by hand), or None: the list's
        annotation (jobs.status.failures.with_lineage) when the run came from a list, else one
        lookup on jobs_jobrun_one_retry_per_run."""
        if not hasattr(self, "retried_as_id"):
            self.retried_as_id = JobRun.objects.filter(retry_of_id=self.pk).values_list("pk", flat=True).first()
        return self.retried_as_id

    @property
    def status_text(self) -> str:
        """The status as lists show it: "succeeded with warnings" for a run that warned."""
        if self.status == self.Status.SUCCEEDED and self.warnings:
            return "succeeded with warnings"
        return self.status
