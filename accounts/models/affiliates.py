from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.money import money_field_kwargs


class Affiliate(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField()
    code = models.SlugField(max_length=50, help_text="The referral code in signup links.")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ("name",)
        constraints = [models.UniqueConstraint(fields=["code"], name="accounts_affiliate_unique_code")]

    def __str__(self) -> str:
        return self.name


class AffiliateConversion(models.Model):
    """A referred signup that earns the affiliate a commission once it has been held long enough."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending (in the hold period)"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"

    affiliate = models.ForeignKey(Affiliate, on_delete=models.PROTECT, related_name="conversions")
    account = models.ForeignKey(
        "accounts.Account", on_delete=models.SET_NULL, null=True, blank=True, related_name="referrals"
    )
    commission = models.DecimalField(**money_field_kwargs())
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="approved") | Q(approved_at__isnull=False),
                name="accounts_affiliateconversion_approved_has_time",
            ),
            models.CheckConstraint(
                condition=Q(commission__gte=0), name="accounts_affiliateconversion_commission_not_negative"
            ),
        ]
        indexes = [
            # approve-mature-affiliate-conversions: pending conversions by age.
            models.Index(fields=["created_at"], condition=Q(status="pending"), name="accounts_conv_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.affiliate}: {self.commission} ({self.status})"
