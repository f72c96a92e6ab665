from __future__ import annotations

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q


class PushSubscription(models.Model):
    """A browser's Web Push subscription (the endpoint the push service gave it)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="push_subscriptions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="push_subscriptions"
    )
    # Push services hand out https endpoints only.
    endpoint = models.CharField(max_length=500, validators=[URLValidator(schemes=["https"])])
    created_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True, help_text="Last push sent to it.")
    expires_at = models.DateTimeField(null=True, blank=True, help_text="From the push service, when it gave one.")

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["endpoint"], name="accounts_pushsubscription_unique_endpoint"),
        ]
        indexes = [
            # cleanup-push-subscriptions: expired ones.
            models.Index(
                fields=["expires_at"], condition=Q(expires_at__isnull=False), name="accounts_push_expires_idx"
            ),
            # cleanup-push-subscriptions: unused ones (last use, or creation when never used).
            models.Index(fields=["last_used_at", "created_at"], name="accounts_push_last_used_idx"),
        ]

    def __str__(self) -> str:
        return self.endpoint[:60]
