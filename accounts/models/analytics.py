from __future__ import annotations

from django.db import models

from core.money import money_field_kwargs


class SubscriptionSnapshot(models.Model):
    """The day's subscription figures (subscription-analytics), one row per day.

    Counts are the state when the job ran; new and churned count the day's events. Billing's
    DailySnapshot keeps the rent and occupancy figures of the same day.
    """

    day = models.DateField(unique=True)
    mrr = models.DecimalField(**money_field_kwargs(), help_text="Monthly price of active subscriptions.")
    active_subscriptions = models.PositiveIntegerField()
    trial_subscriptions = models.PositiveIntegerField()
    new_subscriptions = models.PositiveIntegerField(help_text="Started that day.")
    churned_subscriptions = models.PositiveIntegerField(help_text="Expired that day.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ("-day",)

    def __str__(self) -> str:
        return f"Subscription snapshot {self.day}"
