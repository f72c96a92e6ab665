"""Plans, customer accounts, their subscriptions, and the catalogs a plan makes shareable."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from core.languages import language_choices
from core.money import money_field_kwargs


class Plan(models.Model):
    code = models.SlugField(max_length=50, unique=True)
    name = models.CharField(max_length=100)
    monthly_price = models.DecimalField(**money_field_kwargs())
    trial_days = models.PositiveSmallIntegerField(default=14)
    includes_catalog = models.BooleanField(default=False, help_text="Subscribers may publish a shareable catalog.")
    stripe_price_id = models.CharField(
        max_length=255, null=True, blank=True, help_text="Stripe's price id (price_...), for sync-stripe."
    )

    class Meta:
        ordering = ("monthly_price",)
        constraints = [
            models.UniqueConstraint(fields=["stripe_price_id"], name="accounts_plan_unique_stripe_price"),
        ]

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    """A customer of the subscription side (a property manager using the portal): an
    organization, whose people are its ``members`` (through ``Membership``, with a role)."""

    name = models.CharField(max_length=200)
    email = models.EmailField(help_text="Where billing and account e-mails go.")
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="accounts.Membership", related_name="accounts", blank=True
    )
    stripe_customer_id = models.CharField(
        max_length=255, null=True, blank=True, help_text="Stripe's customer id (cus_...), for sync-stripe."
    )
    language = models.CharField(
        max_length=16,
        blank=True,
        choices=language_choices,
        help_text="Language of the organization's e-mails, for members who chose none. Blank: the site default.",
    )

    class Meta:
        ordering = ("name",)
        constraints = [
            models.UniqueConstraint(fields=["stripe_customer_id"], name="accounts_account_unique_stripe_customer"),
        ]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    class Status(models.TextChoices):
        TRIAL = "trial", "Trial"
        ACTIVE = "active", "Active"
        CANCELLED = "cancelled", "Cancelled (runs to period end)"
        EXPIRED = "expired", "Expired"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="subscriptions")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="subscriptions")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.TRIAL)
    started_at = models.DateTimeField()
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    expired_at = models.DateTimeField(null=True, blank=True)
    stripe_id = models.CharField(
        max_length=255, null=True, blank=True, help_text="Stripe's subscription id (sub_...), for sync-stripe."
    )

    class Meta:
        ordering = ("-started_at",)
        constraints = [
            # Also makes two sync-stripe runs creating the same missed subscription create one.
            models.UniqueConstraint(fields=["stripe_id"], name="accounts_subscription_unique_stripe_id"),
            models.CheckConstraint(
                condition=~Q(status="trial") | Q(trial_ends_at__isnull=False),
                name="accounts_subscription_trial_has_end",
            ),
            models.CheckConstraint(
                condition=~Q(status__in=["active", "cancelled"]) | Q(current_period_end__isnull=False),
                name="accounts_subscription_paid_has_period_end",
            ),
            models.CheckConstraint(
                condition=~Q(status="expired") | Q(expired_at__isnull=False),
                name="accounts_subscription_expired_has_time",
            ),
        ]
        indexes = [
            # expire-subscriptions: trials past their end.
            models.Index(fields=["trial_ends_at"], condition=Q(status="trial"), name="accounts_sub_trial_end_idx"),
            # expire-subscriptions: paid periods past their end.
            models.Index(
                fields=["current_period_end"],
                condition=Q(status__in=["active", "cancelled"]),
                name="accounts_sub_period_end_idx",
            ),
            # expire-subscriptions: this run's expiries (notices, catalogs); analytics: churn of a day.
            models.Index(fields=["expired_at"], condition=Q(status="expired"), name="accounts_sub_expired_at_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.account} on {self.plan} ({self.status})"


class Catalog(models.Model):
    """A shareable catalog; published while a live plan of its account includes catalogs
    (``Plan.includes_catalog``; expire-subscriptions keeps that true)."""

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="catalogs")
    name = models.CharField(max_length=200)
    required_plan = models.ForeignKey(
        Plan,
        on_delete=models.PROTECT,
        related_name="catalogs",
        help_text="The plan it was made under. Publication follows every plan of the account that includes catalogs.",
    )
    published = models.BooleanField(default=False)
    unpublished_at = models.DateTimeField(null=True, blank=True)
    unpublished_reason = models.CharField(max_length=200, blank=True)
    republished_at = models.DateTimeField(
        null=True, blank=True, help_text="When expire-subscriptions last published it again after a renewal."
    )

    class Meta:
        ordering = ("name",)
        indexes = [
            # expire-subscriptions: published catalogs of the accounts that just lost a plan.
            models.Index(fields=["account"], condition=Q(published=True), name="accounts_catalog_published_idx"),
            # expire-subscriptions: catalogs the job unpublished (republish candidates, and this
            # run's unpublished ones for the expiry e-mail).
            models.Index(
                fields=["unpublished_reason", "unpublished_at"],
                condition=Q(published=False),
                name="accounts_catalog_unpub_idx",
            ),
            # expire-subscriptions: this run's republished catalogs, for the e-mail.
            models.Index(
                fields=["republished_at"],
                condition=Q(republished_at__isnull=False),
                name="accounts_catalog_republish_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.name
