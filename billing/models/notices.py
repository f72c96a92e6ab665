"""The "once" facts of the reminder and notice jobs.

The notifications app dedupes messages by key as well; these rows are billing's own record
of what was sent for which lease or charge, and their unique constraints are
what makes a second run of a job send nothing twice.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class BillingNotice(models.Model):
    class Kind(models.TextChoices):
        RENT_REMINDER = "rent_reminder", "Rent reminder"
        OVERDUE = "overdue", "Overdue notice"
        LEASE_EXPIRY = "lease_expiry", "Lease expiry alert"
        AUTOPAY_PRECHARGE = "autopay_precharge", "Autopay pre-charge notice"
        AUTOPAY_ENROLLMENT = "autopay_enrollment", "Autopay enrollment reminder"

    kind = models.CharField(max_length=20, choices=Kind.choices)
    tier = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Days (before or overdue).")
    period = models.DateField(null=True, blank=True, help_text="The month a monthly notice belongs to.")
    lease = models.ForeignKey("billing.Lease", on_delete=models.PROTECT, null=True, blank=True, db_index=False)
    tenant = models.ForeignKey("billing.Tenant", on_delete=models.PROTECT, null=True, blank=True, db_index=False)
    charge = models.ForeignKey("billing.LedgerEntry", on_delete=models.PROTECT, null=True, blank=True, db_index=False)
    dedupe_key = models.CharField(max_length=200, help_text="The key the notification was queued under.")
    sent_on = models.DateField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("-created_at",)
        # Each constraint is the "once" rule of one job, and its index serves that job's
        # anti-join (NOT EXISTS) when picking what is still to send.
        constraints = [
            models.UniqueConstraint(fields=["dedupe_key"], name="billing_notice_unique_dedupe_key"),
            models.UniqueConstraint(
                fields=["charge"],
                condition=Q(kind="rent_reminder"),
                name="billing_notice_rent_reminder_once_per_charge",
            ),
            models.UniqueConstraint(
                fields=["charge", "tier"],
                condition=Q(kind="overdue"),
                name="billing_notice_overdue_tier_once_per_charge",
            ),
            models.UniqueConstraint(
                fields=["lease", "tier"],
                condition=Q(kind="lease_expiry"),
                name="billing_notice_expiry_tier_once_per_lease",
            ),
            models.UniqueConstraint(
                fields=["lease", "period"],
                condition=Q(kind="autopay_precharge"),
                name="billing_notice_autopay_once_per_lease_and_month",
            ),
            models.UniqueConstraint(
                fields=["tenant", "period"],
                condition=Q(kind="autopay_enrollment"),
                name="billing_notice_enrollment_once_per_tenant_and_month",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.dedupe_key}"
