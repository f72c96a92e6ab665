"""Who owns what, who rents it, and on which terms."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.languages import language_choices
from core.money import money_field_kwargs


def default_management_fee_percent() -> Decimal:
    return Decimal(settings.BILLING_MANAGEMENT_FEE_PERCENT)


class Owner(models.Model):
    """A property owner: receives a monthly statement and payout."""

    name = models.CharField(max_length=200)
    email = models.EmailField()
    address = models.CharField(max_length=300, blank=True)
    management_fee_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        default=default_management_fee_percent,
        help_text="Percent of collected rent the manager keeps.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    language = models.CharField(
        max_length=16,
        blank=True,
        choices=language_choices,
        help_text="Language of the e-mails sent to them. Blank: the site default (LANGUAGE_CODE).",
    )

    class Meta:
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=Q(management_fee_percent__gte=0) & Q(management_fee_percent__lte=100),
                name="billing_owner_fee_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Property(models.Model):
    owner = models.ForeignKey(Owner, on_delete=models.PROTECT, related_name="properties")
    name = models.CharField(max_length=200)
    address = models.CharField(max_length=300, blank=True)

    class Meta:
        verbose_name_plural = "properties"
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Unit(models.Model):
    property = models.ForeignKey(Property, on_delete=models.PROTECT, related_name="units")
    name = models.CharField(max_length=50)

    class Meta:
        ordering = ("property", "name")
        constraints = [
            models.UniqueConstraint(fields=["property", "name"], name="billing_unit_unique_name_per_property"),
        ]

    def __str__(self) -> str:
        return f"{self.property} / {self.name}"


class Tenant(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField()
    autopay_enrolled = models.BooleanField(
        default=False, help_text="Rent is charged to the tenant's stored payment method on the due date."
    )
    language = models.CharField(
        max_length=16,
        blank=True,
        choices=language_choices,
        help_text="Language of the e-mails sent to them. Blank: the site default (LANGUAGE_CODE).",
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Lease(models.Model):
    """A tenant's agreement for a unit.

    ``balance`` is a cached sum of the lease's ledger (positive: the tenant owes). Services that
    append to the ledger move it in the same transaction; the reconciliation job recomputes it
    from the ledger and records every correction it makes.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft (not signed)"
        ACTIVE = "active", "Active"
        ENDED = "ended", "Ended"

    unit = models.ForeignKey(Unit, on_delete=models.PROTECT, related_name="leases")
    tenant = models.ForeignKey(Tenant, on_delete=models.PROTECT, related_name="leases")
    start_date = models.DateField()
    end_date = models.DateField(null=True, blank=True, help_text="Empty: month to month.")
    monthly_rent = models.DecimalField(**money_field_kwargs())
    due_day = models.PositiveSmallIntegerField(default=1, help_text="Day of the month rent is due (1-31).")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    balance = models.DecimalField(**money_field_kwargs(default=Decimal("0.00")))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)
        constraints = [
            models.CheckConstraint(condition=Q(monthly_rent__gte=0), name="billing_lease_rent_not_negative"),
            models.CheckConstraint(
                condition=Q(due_day__gte=1) & Q(due_day__lte=31), name="billing_lease_due_day_range"
            ),
            models.CheckConstraint(
                condition=Q(end_date__isnull=True) | Q(end_date__gte=F("start_date")),
                name="billing_lease_ends_after_start",
            ),
        ]
        indexes = [
            # lease-expiration: active leases ending on a given day.
            models.Index(fields=["end_date"], condition=Q(status="active"), name="billing_lease_active_end_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.tenant} @ {self.unit}"
