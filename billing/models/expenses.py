"""Recurring property expenses, the monthly copies made from them, and tenant invoices."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.money import money_field_kwargs


class RecurringExpense(models.Model):
    """A template copied into every month it is active (recurring-expenses job)."""

    property = models.ForeignKey("billing.Property", on_delete=models.PROTECT, related_name="recurring_expenses")
    description = models.CharField(max_length=200)
    amount = models.DecimalField(**money_field_kwargs())
    day_of_month = models.PositiveSmallIntegerField(default=1, help_text="Day the expense is incurred (1-31).")
    tenant_billable = models.BooleanField(
        default=False, help_text="Also invoice the lease's tenant for it (e.g. water, parking)."
    )
    lease = models.ForeignKey(
        "billing.Lease",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="recurring_expenses",
        help_text="The lease billed when the expense is tenant-billable.",
    )
    active = models.BooleanField(default=True)
    starts_on = models.DateField()
    ends_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ("property", "description")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_recurringexpense_amount_positive"),
            models.CheckConstraint(
                condition=Q(tenant_billable=False) | Q(lease__isnull=False),
                name="billing_recurringexpense_billable_needs_lease",
            ),
            models.CheckConstraint(
                condition=Q(day_of_month__gte=1) & Q(day_of_month__lte=31),
                name="billing_recurringexpense_day_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.property}: {self.description}"


class Expense(models.Model):
    """Money spent on a property in a month; deducted on the owner's statement and payout."""

    property = models.ForeignKey("billing.Property", on_delete=models.PROTECT, related_name="expenses")
    template = models.ForeignKey(
        RecurringExpense, on_delete=models.PROTECT, null=True, blank=True, related_name="copies"
    )
    description = models.CharField(max_length=200)
    amount = models.DecimalField(**money_field_kwargs())
    period = models.DateField(help_text="First day of the month the expense belongs to.")
    incurred_on = models.DateField()
    tenant_billable = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-period", "property")
        constraints = [
            # recurring-expenses: each template copied into a month once.
            models.UniqueConstraint(
                fields=["template", "period"],
                condition=Q(template__isnull=False),
                name="billing_expense_one_copy_per_template_and_period",
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_expense_amount_positive"),
        ]
        indexes = [
            # statements and payouts: expenses of a month, grouped by property.
            models.Index(fields=["period", "property"], name="billing_expense_period_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.description} ({self.period:%Y-%m}): {self.amount}"


class TenantInvoice(models.Model):
    """A tenant-billable expense passed on to the tenant; it also appears as a ledger charge."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        VOID = "void", "Void"

    lease = models.ForeignKey("billing.Lease", on_delete=models.PROTECT, related_name="invoices")
    expense = models.OneToOneField(Expense, on_delete=models.PROTECT, related_name="invoice")
    description = models.CharField(max_length=200)
    amount = models.DecimalField(**money_field_kwargs())
    issued_on = models.DateField()
    due_date = models.DateField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)

    class Meta:
        ordering = ("-issued_on", "-id")
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="billing_tenantinvoice_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"Invoice {self.pk}: {self.description}"
