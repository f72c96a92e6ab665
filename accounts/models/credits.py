from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.money import money_field_kwargs


class CreditBalance(models.Model):
    """An account's prepaid credits and the threshold below which it is told, once per crossing."""

    account = models.OneToOneField("accounts.Account", on_delete=models.CASCADE, related_name="credit_balance")
    balance = models.DecimalField(**money_field_kwargs())
    threshold = models.DecimalField(**money_field_kwargs())
    below_threshold = models.BooleanField(
        default=False, help_text="Set when the low-credit alert of this crossing went out; cleared on top-up."
    )
    below_since = models.DateTimeField(null=True, blank=True, help_text="When the current crossing was noticed.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("account",)
        constraints = [
            models.CheckConstraint(condition=Q(threshold__gte=0), name="accounts_creditbalance_threshold_not_negative"),
            models.CheckConstraint(
                condition=Q(below_threshold=False) | Q(below_since__isnull=False),
                name="accounts_creditbalance_flag_has_time",
            ),
        ]
        indexes = [
            # check-low-credits-alerts: unflagged balances that fell below their threshold.
            models.Index(fields=["balance"], condition=Q(below_threshold=False), name="accounts_credit_unflagged_idx"),
            # check-low-credits-alerts: flagged balances topped up again (flag cleared).
            models.Index(fields=["balance"], condition=Q(below_threshold=True), name="accounts_credit_flagged_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account}: {self.balance}"
