"""Owner statements (with their PDF) and owner payouts, one per owner and month."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q

from ..money import money_field_kwargs


class StatementStorage(FileSystemStorage):
    """Files under BILLING_STATEMENTS_DIR, read at each use (tests and deployments may move it).
    Never under MEDIA_ROOT: statements are private and served only through the admin."""

    @property
    def base_location(self) -> str:
        return str(settings.BILLING_STATEMENTS_DIR)

    @property
    def location(self) -> str:
        return os.path.abspath(self.base_location)


def statements_storage() -> FileSystemStorage:
    return StatementStorage()


class OwnerStatement(models.Model):
    """The month's account for an owner.

    net = rent_collected + other_income - expenses - management_fee
    closing_balance = opening_balance + net - payouts (paid out during the month)
    The opening balance is the previous statement's closing balance.
    """

    owner = models.ForeignKey("billing.Owner", on_delete=models.PROTECT, related_name="statements")
    period = models.DateField(help_text="First day of the month the statement covers.")
    opening_balance = models.DecimalField(**money_field_kwargs())
    rent_billed = models.DecimalField(**money_field_kwargs())
    rent_collected = models.DecimalField(**money_field_kwargs())
    other_income = models.DecimalField(**money_field_kwargs(), help_text="Billed expenses and fees collected.")
    expenses = models.DecimalField(**money_field_kwargs())
    management_fee = models.DecimalField(**money_field_kwargs())
    net = models.DecimalField(**money_field_kwargs())
    payouts = models.DecimalField(**money_field_kwargs(), help_text="Paid to the owner during the month.")
    closing_balance = models.DecimalField(**money_field_kwargs())
    pdf = models.FileField(storage=statements_storage, upload_to="%Y/%m/", blank=True)
    generated_at = models.DateTimeField()

    class Meta:
        ordering = ("-period", "owner")
        constraints = [
            models.UniqueConstraint(fields=["owner", "period"], name="billing_ownerstatement_one_per_owner_and_period"),
        ]
        indexes = [
            # generate-statements: statements still waiting for their PDF (a crash between
            # the rows and the rendering leaves these; the next run renders them).
            models.Index(fields=["id"], condition=Q(pdf=""), name="billing_stmt_pdf_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.period:%B %Y}"


class Payout(models.Model):
    """What the owner is paid for a month: collected rent and other income less expenses and fee.

    A result that is not positive is recorded with its reason and not paid.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending transfer"
        PAID = "paid", "Paid"
        NOT_PAYABLE = "not_payable", "Not payable"

    owner = models.ForeignKey("billing.Owner", on_delete=models.PROTECT, related_name="payouts")
    period = models.DateField(help_text="First day of the month the payout is for.")
    rent_collected = models.DecimalField(**money_field_kwargs())
    other_income = models.DecimalField(**money_field_kwargs())
    expenses = models.DecimalField(**money_field_kwargs())
    management_fee = models.DecimalField(**money_field_kwargs())
    amount = models.DecimalField(**money_field_kwargs())
    status = models.CharField(max_length=12, choices=Status.choices)
    reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField()
    paid_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ("-period", "owner")
        constraints = [
            models.UniqueConstraint(fields=["owner", "period"], name="billing_payout_one_per_owner_and_period"),
            models.CheckConstraint(
                condition=Q(status="not_payable") | Q(amount__gt=0), name="billing_payout_paid_amount_positive"
            ),
            models.CheckConstraint(
                condition=~Q(status="not_payable") | ~Q(reason=""), name="billing_payout_not_payable_has_reason"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.period:%B %Y}: {self.amount} ({self.status})"
