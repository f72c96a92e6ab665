from __future__ import annotations

from django.db import models

from ..money import money_field_kwargs


class DailySnapshot(models.Model):
    """The day's business figures (generate-analytics), one row per day.

    Subscription counts are the state when the job ran; new and churned count the day's events.
    """

    day = models.DateField(unique=True)
    mrr = models.DecimalField(**money_field_kwargs(), help_text="Monthly price of active subscriptions.")
    active_subscriptions = models.PositiveIntegerField()
    trial_subscriptions = models.PositiveIntegerField()
    new_subscriptions = models.PositiveIntegerField(help_text="Started that day.")
    churned_subscriptions = models.PositiveIntegerField(help_text="Expired that day.")
    rent_billed_mtd = models.DecimalField(**money_field_kwargs(), help_text="Month to date, through the day.")
    rent_collected_mtd = models.DecimalField(**money_field_kwargs(), help_text="Month to date, through the day.")
    units_total = models.PositiveIntegerField()
    units_occupied = models.PositiveIntegerField()
    occupancy_percent = models.DecimalField(max_digits=5, decimal_places=2)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ("-day",)

    def __str__(self) -> str:
        return f"Snapshot {self.day}"
