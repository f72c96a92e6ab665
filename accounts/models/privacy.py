from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class DeletionRequest(models.Model):
    """A customer's request to delete their organization (GDPR), carried out by
    process-account-deletions once ``ACCOUNTS_DELETION_GRACE_DAYS`` have passed.

    ``status`` moves pending -> in_progress -> completed, or pending -> cancelled; the job records
    each step it finished on the row (``stripe_cancelled_at``), so a run that dies part-way is
    resumed by the next one without repeating a step.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (in the grace period)"
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="deletion_requests"
    )
    account_name = models.CharField(max_length=200, help_text="Kept after the account itself is gone.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    requested_at = models.DateTimeField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When the job took the request up.")
    stripe_cancelled_at = models.DateTimeField(
        null=True, blank=True, help_text="When the account's Stripe subscriptions were cancelled (step done)."
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, help_text="Why the last attempt stopped; the next run tries again.")
    outcome = models.JSONField(default=dict, blank=True, help_text="What was done: rows deleted or anonymised.")

    class Meta:
        ordering = ("-requested_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["pending", "in_progress", "completed", "cancelled"]),
                name="accounts_deletionrequest_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="completed", completed_at__isnull=False)
                | (~Q(status="completed") & Q(completed_at__isnull=True)),
                name="accounts_deletionrequest_completed_iff_time",
            ),
            models.CheckConstraint(
                condition=Q(status="cancelled", cancelled_at__isnull=False)
                | (~Q(status="cancelled") & Q(cancelled_at__isnull=True)),
                name="accounts_deletionrequest_cancelled_iff_time",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["pending", "cancelled"]) | Q(started_at__isnull=False),
                name="accounts_deletionrequest_started_has_time",
            ),
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(status__in=["pending", "in_progress"]),
                name="accounts_deletionrequest_one_open_per_account",
            ),
        ]
        indexes = [
            # process-account-deletions: pending requests past the grace period, and the ones
            # a run left in progress.
            models.Index(
                fields=["status", "requested_at"],
                condition=Q(status__in=["pending", "in_progress"]),
                name="accounts_deletion_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"Deletion of {self.account_name}"


class ErrorLog(models.Model):
    """An application error recorded while error logging is on (ACCOUNTS_ERROR_LOGGING_ENABLED)."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="error_logs"
    )
    created_at = models.DateTimeField()
    message = models.TextField()

    class Meta:
        ordering = ("-created_at",)
        indexes = [
            # purge-error-logs: rows past the retention; the admin list's ordering.
            models.Index(fields=["created_at"], name="accounts_errorlog_created_idx"),
        ]

    def __str__(self) -> str:
        return self.message[:80]
