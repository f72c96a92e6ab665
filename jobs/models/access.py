"""Who may act on a job beyond Django's model permissions: a job limited to operator groups,
and the named API keys external schedulers trigger jobs with (docs/permissions.md)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.models import Q
from django.utils import timezone

from jobs.models.jobs import Job


class JobOperatorGroup(models.Model):
    """Limits a job to the members of a group. A job with no rows here is open to everyone with
    the model permission; with rows, to members of at least one of the groups (and superusers)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE, related_name="operator_groups")
    group = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = "operator group"
        constraints = [models.UniqueConstraint(fields=["job", "group"], name="jobs_joboperatorgroup_unique")]
        indexes = [
            # "Jobs limited to any of these groups": an API key's scope, a user's groups.
            models.Index(fields=["group", "job"], name="jobs_joboperatorgroup_group"),
        ]

    def __str__(self) -> str:
        return f"{self.job} limited to {self.group}"


class ApiKey(models.Model):
    """A named bearer key for the HTTP API. Only the SHA-256 digest of the key is stored: the key
    is shown once when it is made (admin, ``manage.py create_api_key``) and never again."""

    name = models.CharField(max_length=100, unique=True, help_text="Who uses it, e.g. k8s-cronjob-billing.")
    # SHA-256 hex of a 256-bit random key: a fast hash is right for random keys (nothing to guess
    # from a dictionary), and it lets a request find its key by an indexed equality lookup.
    digest = models.CharField(max_length=64, unique=True, editable=False)
    jobs = models.ManyToManyField(
        Job, blank=True, related_name="+", help_text="Jobs this key may trigger. Empty (and no groups): every job."
    )
    groups = models.ManyToManyField(
        Group,
        blank=True,
        related_name="+",
        help_text="This key may also trigger the jobs limited to these operator groups.",
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="Refused from then on. Empty: never.")
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # The owner: a key made in the admin works only while the user who made it is active. SET_NULL
    # keeps the key's row (and the audit entries naming it) when the user is deleted; the key is
    # then refused, since only an ``ownerless`` key may have no owner.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name="owner",
        help_text="The key works only while this user is active.",
    )
    ownerless = models.BooleanField(
        default=False,
        editable=False,
        help_text="Made with manage.py create_api_key by someone with shell access: it has no owner to lose.",
    )
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_from = models.CharField(max_length=64, blank=True, editable=False)

    class Meta:
        verbose_name = "API key"
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=~Q(digest=""), name="jobs_apikey_digest_set"),
        ]

    def __str__(self) -> str:
        return self.name

    def refusal(self, now=None) -> str:
        """Why this key is refused now ("" when it is valid)."""
        now = now or timezone.now()
        if self.revoked_at is not None:
            return "key revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "key expired"
        if not self.ownerless and self.created_by_id is None:
            return "key owner deleted"
        if not self.ownerless and not self.created_by.is_active:
            return "key owner deactivated"
        return ""
