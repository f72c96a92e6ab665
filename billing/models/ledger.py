"""The append-only ledger of each lease, and the record of every balance correction."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.money import money_field_kwargs


class AppendOnlyQuerySet(models.QuerySet):
    """Ledgers are append-only: a correction is a new entry, never an edit or a deletion.

    Rewriting history would make last month's statement disagree with this month's opening
    balance, and nobody could tell which figure was right.
    """

    def update(self, **kwargs):
        raise TypeError(f"{self.model.__name__} is append-only; record a correcting entry instead.")

    def delete(self):
        raise TypeError(f"{self.model.__name__} is append-only; record a correcting entry instead.")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if self.pk is not None and not self._state.adding:
            raise TypeError(f"{type(self).__name__} is append-only; record a correcting entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} is append-only; record a correcting entry instead.")


class LedgerEntry(AppendOnlyModel):
    """One movement on a lease's account. ``amount`` is signed: positive means the tenant owes
    more (charges, fees), negative means less (payments, credits); adjustments go either way.

    Payments and credits name the charge they settle (``applies_to``); their ``category`` is that
    charge's, so statements can tell collected rent from other income without a join.
    """

    class Kind(models.TextChoices):
        CHARGE = "charge", "Charge"
        PAYMENT = "payment", "Payment"
        CREDIT = "credit", "Credit"
        FEE = "fee", "Fee"
        ADJUSTMENT = "adjustment", "Adjustment"

    class Category(models.TextChoices):
        RENT = "rent", "Rent"
        EXPENSE = "expense", "Billed expense"
        LATE_FEE = "late_fee", "Late fee"
        OTHER = "other", "Other"

    # Indexed below by (lease, amount), which serves lookups by lease as well.
    lease = models.ForeignKey("billing.Lease", on_delete=models.PROTECT, related_name="ledger_entries", db_index=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    category = models.CharField(max_length=10, choices=Category.choices, default=Category.RENT)
    description = models.CharField(max_length=200)
    amount = models.DecimalField(**money_field_kwargs(), help_text="Positive: the tenant owes more.")
    period = models.DateField(help_text="First day of the month the entry belongs to.")
    due_date = models.DateField(null=True, blank=True)
    posted_on = models.DateField(help_text="The business day the entry took effect.")
    applies_to = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="settlements", db_index=False
    )
    # These three are empty on most rows (rent charges): partial indexes below keep the
    # 100k-row charge insert from maintaining three indexes of NULLs.
    payment = models.ForeignKey("billing.Payment", on_delete=models.PROTECT, null=True, blank=True, db_index=False)
    invoice = models.ForeignKey(
        "billing.TenantInvoice", on_delete=models.PROTECT, null=True, blank=True, db_index=False
    )
    # Set by the job to its ``now`` (not auto_now_add, which would overwrite it), so a batch
    # can find the rows it wrote and a --as-of run is reproducible.
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "ledger entries"
        ordering = ("lease", "posted_on", "id")
        constraints = [
            # generate-charges: one rent charge per lease and month, however often it runs.
            models.UniqueConstraint(
                fields=["lease", "period"],
                condition=Q(kind="charge", category="rent"),
                name="billing_ledgerentry_one_rent_charge_per_period",
            ),
            # recurring-expenses: one ledger charge per tenant invoice.
            models.UniqueConstraint(
                fields=["invoice"],
                condition=Q(kind="charge", invoice__isnull=False),
                name="billing_ledgerentry_one_charge_per_invoice",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["charge", "fee"]) | Q(amount__gt=0),
                name="billing_ledgerentry_charges_are_positive",
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["payment", "credit"]) | Q(amount__lt=0),
                name="billing_ledgerentry_payments_are_negative",
            ),
        ]
        indexes = [
            # reconciliation: SUM(amount) GROUP BY lease over a range of lease ids
            # (index-only scan on PostgreSQL).
            models.Index(fields=["lease", "amount"], name="billing_ledger_lease_amt_idx"),
            # overdue-notices / rent-reminders: open charges by due date.
            models.Index(fields=["due_date"], condition=Q(kind="charge"), name="billing_ledger_charge_due_idx"),
            # Paid amount of a charge: SUM(amount) WHERE applies_to_id = charge.
            models.Index(
                fields=["applies_to"], condition=Q(applies_to__isnull=False), name="billing_ledger_applies_to_idx"
            ),
            models.Index(fields=["payment"], condition=Q(payment__isnull=False), name="billing_ledger_payment_idx"),
            models.Index(fields=["invoice"], condition=Q(invoice__isnull=False), name="billing_ledger_invoice_idx"),
            # statements: payments and charges of a month.
            models.Index(fields=["posted_on"], name="billing_ledger_posted_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.description}: {self.amount}"


class BalanceCorrection(AppendOnlyModel):
    """The reconciliation job found ``Lease.balance`` at ``before`` while the ledger sums to
    ``after``, and set it to ``after``. Nothing is silently rewritten."""

    lease = models.ForeignKey("billing.Lease", on_delete=models.PROTECT, related_name="balance_corrections")
    before = models.DecimalField(**money_field_kwargs())
    after = models.DecimalField(**money_field_kwargs())
    difference = models.DecimalField(**money_field_kwargs(), help_text="after - before")
    corrected_at = models.DateTimeField()

    class Meta:
        ordering = ("-corrected_at", "-id")
        constraints = [
            models.CheckConstraint(
                condition=Q(difference=models.F("after") - models.F("before")),
                name="billing_balancecorrection_difference_matches",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lease_id}: {self.before} -> {self.after}"
