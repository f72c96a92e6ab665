"""Accounts as workspaces: their members (auth users with a role) and invitations to join."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from core.languages import language_choices


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    MEMBER = "member", "Member"


class Membership(models.Model):
    """A user's place in an account (the through model of ``Account.members``)."""

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="account_memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    joined_at = models.DateTimeField()
    language = models.CharField(
        max_length=16,
        blank=True,
        choices=language_choices,
        help_text="The e-mails this member receives from the organization are in this language. "
        "Blank: the organization's language.",
    )

    class Meta:
        ordering = ("account", "user")
        constraints = [
            models.UniqueConstraint(fields=["account", "user"], name="accounts_membership_once_per_user"),
            models.UniqueConstraint(
                fields=["account"], condition=Q(role="owner"), name="accounts_membership_one_owner"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.account} ({self.role})"


class Invitation(models.Model):
    """An e-mailed invitation to join an account. Only the SHA-256 of its token is stored."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"

    account = models.ForeignKey("accounts.Account", on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    token_hash = models.CharField(max_length=64, help_text="SHA-256 hex digest of the token sent by e-mail.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at",)
        constraints = [
            models.UniqueConstraint(fields=["token_hash"], name="accounts_invitation_unique_token_hash"),
            models.UniqueConstraint(
                fields=["account", "email"],
                condition=Q(status="pending"),
                name="accounts_invitation_one_pending_per_email",
            ),
            models.CheckConstraint(
                condition=Q(expires_at__gt=F("created_at")), name="accounts_invitation_expires_after_creation"
            ),
            models.CheckConstraint(
                condition=~Q(status="accepted") | Q(accepted_at__isnull=False),
                name="accounts_invitation_accepted_has_time",
            ),
        ]
        indexes = [
            # cleanup-invitations: pending invitations past their expiry.
            models.Index(fields=["expires_at"], condition=Q(status="pending"), name="accounts_invite_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.email} to {self.account} ({self.status})"
