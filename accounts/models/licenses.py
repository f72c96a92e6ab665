from __future__ import annotations

from django.db import models
from django.db.models import Q


class License(models.Model):
    """A license key of the license (or hybrid) billing model."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        EXPIRED = "expired", "Expired"
        REVOKED = "revoked", "Revoked"

    account = models.ForeignKey("accounts.Account", on_delete=models.PROTECT, related_name="licenses")
    key = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    expires_at = models.DateTimeField()
    expired_at = models.DateTimeField(null=True, blank=True, help_text="When check-license-expiration expired it.")

    class Meta:
        ordering = ("expires_at",)
        constraints = [
            models.UniqueConstraint(fields=["key"], name="accounts_license_unique_key"),
            models.CheckConstraint(
                condition=~Q(status="expired") | Q(expired_at__isnull=False), name="accounts_license_expired_has_time"
            ),
        ]
        indexes = [
            # check-license-expiration: active licenses by expiry (to expire, and to warn).
            models.Index(fields=["expires_at"], condition=Q(status="active"), name="accounts_license_active_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.key[:8]}... ({self.status})"


class LicenseWarning(models.Model):
    """One expiry warning sent: the "once per tier" fact of check-license-expiration."""

    license = models.ForeignKey(License, on_delete=models.CASCADE, related_name="warnings")
    tier = models.PositiveSmallIntegerField(help_text="Days before expiry.")
    dedupe_key = models.CharField(max_length=200)
    sent_at = models.DateTimeField()

    class Meta:
        ordering = ("-sent_at",)
        constraints = [
            # Also serves the job's NOT EXISTS anti-join.
            models.UniqueConstraint(fields=["license", "tier"], name="accounts_licensewarning_tier_once"),
        ]

    def __str__(self) -> str:
        return f"{self.license} {self.tier}-day warning"
