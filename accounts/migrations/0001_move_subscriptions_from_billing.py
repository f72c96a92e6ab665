"""Plan, Account, Subscription and Catalog move here from billing, rows kept.

Their tables stay where they are: the four models are created in this app's migration state
only (``SeparateDatabaseAndState``), on the tables billing created, and billing's
``0004_subscriptions_move_to_accounts`` (which runs after this one: ``run_before``) deletes
them from billing's state only. ``0002_subscriptions_tables_rename`` then renames the tables,
indexes and constraints to this app's names, on both databases.

Also here, for the same move: trial-reminder "once" facts and the daily subscription figures
get their own tables, filled from billing's before billing drops its copies, and queued
e-mails are pointed at the templates' new names.
"""

import django.db.models.deletion
from django.db import migrations, models

TEMPLATES = {
    "billing/subscription_expired": "accounts/subscription_expired",
    "billing/trial_reminder": "accounts/trial_reminder",
}


def copy_from_billing(apps, schema_editor):
    """1. trial-reminder facts; 2. the subscription figures of billing's daily snapshots;
    3. e-mails still queued under the templates' old names. Plain INSERT ... SELECT keeps
    every value as stored (a model save would restamp ``created_at``)."""
    schema_editor.execute(
        "INSERT INTO accounts_subscriptionnotice (kind, subscription_id, tier, dedupe_key, sent_on, created_at) "
        "SELECT kind, subscription_id, tier, dedupe_key, sent_on, created_at FROM billing_billingnotice "
        "WHERE kind = 'trial_reminder' AND subscription_id IS NOT NULL AND tier IS NOT NULL"
    )
    schema_editor.execute(
        "INSERT INTO accounts_subscriptionsnapshot (day, mrr, active_subscriptions, trial_subscriptions, "
        "new_subscriptions, churned_subscriptions, created_at) "
        "SELECT day, mrr, active_subscriptions, trial_subscriptions, new_subscriptions, churned_subscriptions, "
        "created_at FROM billing_dailysnapshot"
    )
    Notification = apps.get_model("notifications", "Notification")
    for old, new in TEMPLATES.items():
        Notification.objects.filter(template=old).update(template=new)


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("billing", "0003_payout_lifecycle_and_statement_deliveries"),
        ("notifications", "0002_dedupe_key_table"),
    ]
    # billing drops its copies (trial-reminder notices, subscription columns of its snapshot)
    # and the moved models from its state only after this migration has copied them.
    run_before = [("billing", "0004_subscriptions_move_to_accounts")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Account",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        ("email", models.EmailField(max_length=254)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        "db_table": "billing_account",
                        "ordering": ("name",),
                    },
                ),
                migrations.CreateModel(
                    name="Plan",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("code", models.SlugField(unique=True)),
                        ("name", models.CharField(max_length=100)),
                        ("monthly_price", models.DecimalField(decimal_places=2, max_digits=12)),
                        ("trial_days", models.PositiveSmallIntegerField(default=14)),
                        (
                            "includes_catalog",
                            models.BooleanField(
                                default=False, help_text="Subscribers may publish a shareable catalog."
                            ),
                        ),
                    ],
                    options={
                        "db_table": "billing_plan",
                        "ordering": ("monthly_price",),
                    },
                ),
                migrations.CreateModel(
                    name="Subscription",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "status",
                            models.CharField(
                                choices=[
                                    ("trial", "Trial"),
                                    ("active", "Active"),
                                    ("cancelled", "Cancelled (runs to period end)"),
                                    ("expired", "Expired"),
                                ],
                                default="trial",
                                max_length=10,
                            ),
                        ),
                        ("started_at", models.DateTimeField()),
                        ("trial_ends_at", models.DateTimeField(blank=True, null=True)),
                        ("current_period_end", models.DateTimeField(blank=True, null=True)),
                        ("cancelled_at", models.DateTimeField(blank=True, null=True)),
                        ("expired_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="subscriptions",
                                to="accounts.account",
                            ),
                        ),
                        (
                            "plan",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="subscriptions",
                                to="accounts.plan",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "billing_subscription",
                        "ordering": ("-started_at",),
                    },
                ),
                migrations.CreateModel(
                    name="Catalog",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("name", models.CharField(max_length=200)),
                        ("published", models.BooleanField(default=False)),
                        ("unpublished_at", models.DateTimeField(blank=True, null=True)),
                        ("unpublished_reason", models.CharField(blank=True, max_length=200)),
                        (
                            "account",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="catalogs",
                                to="accounts.account",
                            ),
                        ),
                        (
                            "required_plan",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT, related_name="catalogs", to="accounts.plan"
                            ),
                        ),
                    ],
                    options={
                        "db_table": "billing_catalog",
                        "ordering": ("name",),
                        "indexes": [
                            models.Index(
                                condition=models.Q(("published", True)),
                                fields=["account", "required_plan"],
                                name="billing_catalog_published_idx",
                            )
                        ],
                    },
                ),
                migrations.AddIndex(
                    model_name="subscription",
                    index=models.Index(
                        condition=models.Q(("status", "trial")),
                        fields=["trial_ends_at"],
                        name="billing_sub_trial_end_idx",
                    ),
                ),
                migrations.AddIndex(
                    model_name="subscription",
                    index=models.Index(
                        condition=models.Q(("status__in", ["active", "cancelled"])),
                        fields=["current_period_end"],
                        name="billing_sub_period_end_idx",
                    ),
                ),
                migrations.AddIndex(
                    model_name="subscription",
                    index=models.Index(
                        condition=models.Q(("status", "expired")),
                        fields=["expired_at"],
                        name="billing_sub_expired_at_idx",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="subscription",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("status", "trial"), _negated=True),
                            ("trial_ends_at__isnull", False),
                            _connector="OR",
                        ),
                        name="billing_subscription_trial_has_end",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="subscription",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("status__in", ["active", "cancelled"]), _negated=True),
                            ("current_period_end__isnull", False),
                            _connector="OR",
                        ),
                        name="billing_subscription_paid_has_period_end",
                    ),
                ),
                migrations.AddConstraint(
                    model_name="subscription",
                    constraint=models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("status", "expired"), _negated=True),
                            ("expired_at__isnull", False),
                            _connector="OR",
                        ),
                        name="billing_subscription_expired_has_time",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="SubscriptionSnapshot",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateField(unique=True)),
                (
                    "mrr",
                    models.DecimalField(
                        decimal_places=2, help_text="Monthly price of active subscriptions.", max_digits=12
                    ),
                ),
                ("active_subscriptions", models.PositiveIntegerField()),
                ("trial_subscriptions", models.PositiveIntegerField()),
                ("new_subscriptions", models.PositiveIntegerField(help_text="Started that day.")),
                ("churned_subscriptions", models.PositiveIntegerField(help_text="Expired that day.")),
                ("created_at", models.DateTimeField()),
            ],
            options={
                "ordering": ("-day",),
            },
        ),
        migrations.CreateModel(
            name="SubscriptionNotice",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(
                        choices=[("trial_reminder", "Trial ending reminder")], default="trial_reminder", max_length=20
                    ),
                ),
                ("tier", models.PositiveSmallIntegerField(help_text="Days before the trial ends.")),
                (
                    "dedupe_key",
                    models.CharField(help_text="The key the notification was queued under.", max_length=200),
                ),
                ("sent_on", models.DateField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "subscription",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="notices", to="accounts.subscription"
                    ),
                ),
            ],
            options={
                "ordering": ("-created_at",),
            },
        ),
        migrations.AddConstraint(
            model_name="subscriptionnotice",
            constraint=models.UniqueConstraint(
                fields=("dedupe_key",), name="accounts_subscriptionnotice_unique_dedupe_key"
            ),
        ),
        migrations.AddConstraint(
            model_name="subscriptionnotice",
            constraint=models.UniqueConstraint(
                fields=("subscription", "kind", "tier"), name="accounts_subscriptionnotice_tier_once"
            ),
        ),
        migrations.RunPython(copy_from_billing, migrations.RunPython.noop, elidable=False),
    ]
