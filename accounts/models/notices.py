"""The "once" facts of trial-reminders: which reminder tier went out for which subscription."""

from __future__ import annotations

from django.db import models


class SubscriptionNotice(models.Model):
    class Kind(models.TextChoices):
        TRIAL_REMINDER = "trial_reminder", "Trial ending reminder"

    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TRIAL_REMINDER)
    subscription = models.ForeignKey("accounts.Subscription", on_delete=models.PROTECT, related_name="notices")
    tier = models.PositiveSmallIntegerField(help_text="Days before the trial ends.")
    dedupe_key = models.CharField(max_length=200, help_text="The key the notification was queued under.")
    sent_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="accounts_subscriptionnotice_unique_dedupe_key"),
            # The "once" rule of trial-reminders; its index serves the job's NOT EXISTS anti-join.
            models.UniqueConstraint(
                fields=["subscription", "kind", "tier"], name="accounts_subscriptionnotice_tier_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.dedupe_key}"
