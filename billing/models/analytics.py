from __future__ import annotations

from django.db import models

from core.money import money_field_kwargs


class DailySnapshot(models.Model):
    """The day's rent and occupancy figures (generate-analytics), one row per day.

    The subscription figures (MRR, subscriptions) live in the accounts app's own snapshot.
    """

    day = models.DateField(unique=True)
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
