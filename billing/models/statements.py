"""Owner statements (with their PDF and their e-mails) and owner payouts, one per owner and month."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.db import models
from django.db.models import Q

from core.money import money_field_kwargs


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
        permissions = [("send_statement", "Can e-mail a statement to its owner again")]
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


class StatementDelivery(models.Model):
    """One e-mail of a statement to its owner: the month's own (once per statement) or a resend.

    The message itself is a queued notification (its status and sent_at are the delivery's);
    the row outlives it when purge-logs deletes old notifications.
    """

    class Kind(models.TextChoices):
        MONTHLY = "monthly", "Monthly statement e-mail"
        RESEND = "resend", "Sent again by staff"

    statement = models.ForeignKey(OwnerStatement, on_delete=models.CASCADE, related_name="deliveries")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    recipient = models.CharField(max_length=254)
    notification = models.ForeignKey(
        "notifications.Notification",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="The queued e-mail; empty once purge-logs deleted it.",
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField()

    class Meta:
        ordering = ("-requested_at", "-id")
        verbose_name_plural = "statement deliveries"
        constraints = [
            # generate-statements mails each statement once, however often it runs.
            models.UniqueConstraint(
                fields=["statement"], condition=Q(kind="monthly"), name="billing_statementdelivery_one_monthly"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.statement} to {self.recipient} ({self.get_kind_display()})"

    @property
    def status(self) -> str:
        if self.notification is None:
            return "sent (e-mail record purged)"
        return self.notification.get_status_display()


class Payout(models.Model):
    """What the owner is paid for a month: collected rent and other income less expenses and fee.

    A result that is not positive is recorded with its reason and not paid. A payable one moves
    pending -> submitted (handed to the disbursement provider under the idempotency key
    ``payout-<id>``) -> paid or failed; staff may settle one by hand (``settle_payout``).
    A submitted payout without a provider id is one whose answer was lost (a timeout):
    submit-payouts sends it again under the same key, which the provider pays at most once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending transfer"
        SUBMITTED = "submitted", "Submitted to the provider"
        PAID = "paid", "Paid"
        FAILED = "failed", "Failed"
        NOT_PAYABLE = "not_payable", "Not payable"

    owner = models.ForeignKey("billing.Owner", on_delete=models.PROTECT, related_name="payouts")
    period = models.DateField(help_text="First day of the month the payout is for.")
    rent_collected = models.DecimalField(**money_field_kwargs())
    other_income = models.DecimalField(**money_field_kwargs())
    expenses = models.DecimalField(**money_field_kwargs())
    management_fee = models.DecimalField(**money_field_kwargs())
    amount = models.DecimalField(**money_field_kwargs())
    status = models.CharField(max_length=12, choices=Status.choices)
    reason = models.CharField(max_length=300, blank=True, help_text="Why it is not payable, or why it failed.")
    created_at = models.DateTimeField()
    submitted_at = models.DateTimeField(null=True, blank=True, help_text="When it was last sent to the provider.")
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Requests sent to the provider so far.")
    provider_id = models.CharField(
        max_length=100, null=True, blank=True, help_text="The provider's id; empty until the provider answered."
    )
    reference = models.CharField(
        max_length=100, blank=True, help_text="Proof of payment: the provider's id, or a check or transfer number."
    )
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, help_text="The last request's error, if any.")

    class Meta:
        ordering = ("-period", "owner")
        permissions = [("settle_payout", "Can mark payouts paid or failed")]
        constraints = [
            models.UniqueConstraint(fields=["owner", "period"], name="billing_payout_one_per_owner_and_period"),
            models.CheckConstraint(
                condition=Q(status="not_payable") | Q(amount__gt=0), name="billing_payout_paid_amount_positive"
            ),
            models.CheckConstraint(
                condition=~Q(status="not_payable") | ~Q(reason=""), name="billing_payout_not_payable_has_reason"
            ),
            models.CheckConstraint(
                condition=~Q(status="submitted") | Q(submitted_at__isnull=False),
                name="billing_payout_submitted_has_submitted_at",
            ),
            models.CheckConstraint(
                condition=~Q(status="paid") | (Q(paid_at__isnull=False) & ~Q(reference="")),
                name="billing_payout_paid_has_paid_at_and_reference",
            ),
            models.CheckConstraint(
                condition=~Q(status="failed") | (Q(failed_at__isnull=False) & ~Q(reason="")),
                name="billing_payout_failed_has_failed_at_and_reason",
            ),
            models.UniqueConstraint(
                fields=["provider_id"],
                condition=Q(provider_id__isnull=False),
                name="billing_payout_unique_provider_id",
            ),
        ]
        indexes = [
            # submit-payouts: pending payouts, and submitted ones whose answer was lost, by id.
            models.Index(
                fields=["id"],
                condition=Q(status="pending") | Q(status="submitted", provider_id__isnull=True),
                name="billing_payout_to_submit_idx",
            ),
            # reconcile-payouts: the oldest submitted payout (where to ask the provider from).
            models.Index(fields=["submitted_at"], condition=Q(status="submitted"), name="billing_payout_submitted_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.owner} {self.period:%B %Y}: {self.amount} ({self.status})"

    @property
    def idempotency_key(self) -> str:
        """Sent with every request for this payout, and its reference at the provider."""
        return f"payout-{self.pk}"
