from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class DeletionRequest(models.Model):
    """A customer's request to delete their account (GDPR); carried out after a grace period."""

    account = models.ForeignKey(
        "accounts.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="deletion_requests"
    )
    account_name = models.CharField(max_length=200, help_text="Kept after the account itself is gone.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    requested_at = models.DateTimeField()
    cancelled_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    outcome = models.JSONField(default=dict, blank=True, help_text="What was done: rows deleted or anonymised.")

    class Meta:
        ordering = ("-requested_at",)
        constraints = [
            models.CheckConstraint(
                condition=Q(cancelled_at__isnull=True) | Q(completed_at__isnull=True),
                name="accounts_deletionrequest_cancelled_or_completed",
            ),
            models.UniqueConstraint(
                fields=["account"],
                condition=Q(cancelled_at__isnull=True, completed_at__isnull=True),
                name="accounts_deletionrequest_one_open_per_account",
            ),
        ]
        indexes = [
            # The deletion queue: open requests by age.
            models.Index(
                fields=["requested_at"],
                condition=Q(cancelled_at__isnull=True, completed_at__isnull=True),
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
