"""The moved tables, indexes and constraints take this app's names (``accounts_...``).

After billing's ``0004_subscriptions_move_to_accounts``, so no billing table refers to them
any more; renames keep every row (PostgreSQL renames in place, SQLite as Django documents).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_move_subscriptions_from_billing"),
        ("billing", "0004_subscriptions_move_to_accounts"),
    ]

    operations = [
        migrations.AlterModelTable(
            name="account",
            table=None,
        ),
        migrations.AlterModelTable(
            name="catalog",
            table=None,
        ),
        migrations.AlterModelTable(
            name="plan",
            table=None,
        ),
        migrations.AlterModelTable(
            name="subscription",
            table=None,
        ),
        migrations.RemoveConstraint(
            model_name="subscription",
            name="billing_subscription_trial_has_end",
        ),
        migrations.RemoveConstraint(
            model_name="subscription",
            name="billing_subscription_paid_has_period_end",
        ),
        migrations.RemoveConstraint(
            model_name="subscription",
            name="billing_subscription_expired_has_time",
        ),
        migrations.RenameIndex(
            model_name="catalog",
            new_name="accounts_catalog_published_idx",
            old_name="billing_catalog_published_idx",
        ),
        migrations.RenameIndex(
            model_name="subscription",
            new_name="accounts_sub_trial_end_idx",
            old_name="billing_sub_trial_end_idx",
        ),
        migrations.RenameIndex(
            model_name="subscription",
            new_name="accounts_sub_period_end_idx",
            old_name="billing_sub_period_end_idx",
        ),
        migrations.RenameIndex(
            model_name="subscription",
            new_name="accounts_sub_expired_at_idx",
            old_name="billing_sub_expired_at_idx",
        ),
        migrations.AddConstraint(
            model_name="subscription",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "trial"), _negated=True), ("trial_ends_at__isnull", False), _connector="OR"
                ),
                name="accounts_subscription_trial_has_end",
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
                name="accounts_subscription_paid_has_period_end",
            ),
        ),
        migrations.AddConstraint(
            model_name="subscription",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("status", "expired"), _negated=True), ("expired_at__isnull", False), _connector="OR"
                ),
                name="accounts_subscription_expired_has_time",
            ),
        ),
    ]
