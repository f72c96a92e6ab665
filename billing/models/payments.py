"""Payments received, the processor's settlement records, and how the two were matched."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.money import money_field_kwargs


class Payment(models.Model):
    class Method(models.TextChoices):
        AUTOPAY = "autopay", "Autopay (card/ACH on file)"
        CARD = "card", "Card"
        ACH = "ach", "Bank transfer"
        CHECK = "check", "Check"

    lease = models.ForeignKey("billing.Lease", on_delete=models.PROTECT, related_name="payments")
    amount = models.DecimalField(**money_field_kwargs())
    received_on = models.DateField()
    method = models.CharField(max_length=10, choices=Method.choices, default=Method.CARD)
    processor_reference = models.CharField(
        max_length=100, null=True, blank=True, help_text="The processor's id; empty for checks."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-received_on", "-id")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_payment_amount_positive"),
            models.UniqueConstraint(
                fields=["processor_reference"],
                condition=Q(processor_reference__isnull=False),
                name="billing_payment_unique_processor_reference",
            ),
        ]
        indexes = [
            # financial-reconciliation: processor payments received before the grace cut-off.
            models.Index(
                fields=["received_on"],
                condition=Q(processor_reference__isnull=False),
                name="billing_payment_processor_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount} on {self.received_on} ({self.processor_reference or self.method})"


class SettlementRecord(models.Model):
    """What the payment processor says it settled (fetched over HTTP or imported from CSV)."""

    class Source(models.TextChoices):
        API = "api", "Processor API"
        FILE = "file", "CSV import"

    processor_reference = models.CharField(max_length=100)
    amount = models.DecimalField(**money_field_kwargs())
    settled_on = models.DateField()
    source = models.CharField(max_length=10, choices=Source.choices)
    raw = models.JSONField(default=dict, blank=True)
    imported_at = models.DateTimeField()

    class Meta:
        ordering = ("-settled_on", "processor_reference")
        constraints = [
            # Fetching or importing the same day twice records each settlement once.
            models.UniqueConstraint(fields=["processor_reference"], name="billing_settlementrecord_unique_reference"),
        ]

    def __str__(self) -> str:
        return f"{self.processor_reference}: {self.amount} on {self.settled_on}"


class SettlementMatch(models.Model):
    """One outcome of financial-reconciliation, kept for the admin and the books."""

    class Outcome(models.TextChoices):
        MATCHED = "matched", "Matched"
        AMOUNT_MISMATCH = "amount_mismatch", "Amount mismatch"
        UNKNOWN_LOCALLY = "unknown_locally", "Unknown locally (no such payment)"
        MISSING_AT_PROCESSOR = "missing_at_processor", "Missing at processor"

    outcome = models.CharField(max_length=25, choices=Outcome.choices)
    settlement = models.ForeignKey(SettlementRecord, on_delete=models.PROTECT, null=True, blank=True)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, null=True, blank=True)
    local_amount = models.DecimalField(**money_field_kwargs(null=True, blank=True))
    processor_amount = models.DecimalField(**money_field_kwargs(null=True, blank=True))
    recorded_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "settlement matches"
        ordering = ("-recorded_at", "-id")
        constraints = [
            # Each settlement record is judged once.
            models.UniqueConstraint(
                fields=["settlement"],
                condition=Q(settlement__isnull=False),
                name="billing_settlementmatch_one_per_settlement",
            ),
            # A payment is reported missing at the processor once.
            models.UniqueConstraint(
                fields=["payment"],
                condition=Q(outcome="missing_at_processor"),
                name="billing_settlementmatch_missing_once_per_payment",
            ),
            models.CheckConstraint(
                condition=Q(settlement__isnull=False) | Q(payment__isnull=False),
                name="billing_settlementmatch_names_something",
            ),
        ]
        indexes = [
            # Admin: outcomes needing attention, newest first.
            models.Index(fields=["-recorded_at"], condition=~Q(outcome="matched"), name="billing_match_problem_idx"),
        ]

    @property
    def difference(self):
        if self.local_amount is None or self.processor_amount is None:
            return None
        return self.processor_amount - self.local_amount

    def __str__(self) -> str:
        return f"{self.get_outcome_display()}: {self.settlement or self.payment}"
