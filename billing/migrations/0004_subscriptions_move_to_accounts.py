"""Plan, Account, Subscription and Catalog leave billing for the accounts app, rows kept.

The accounts app's ``0001_move_subscriptions_from_billing`` runs first (its ``run_before``
names this migration): it takes the four models into its state on these very tables and
copies the trial-reminder facts and the subscription figures of the daily snapshots. Here
billing then drops its copies of those and deletes the four models from its state only
(``SeparateDatabaseAndState``): no table is dropped. Billing never names the accounts app.
"""

from django.db import migrations, models


def trial_notices_delete(apps, schema_editor):
    apps.get_model("billing", "BillingNotice").objects.filter(kind="trial_reminder").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0003_payout_lifecycle_and_statement_deliveries"),
    ]

    operations = [
        migrations.RunPython(trial_notices_delete, migrations.RunPython.noop, elidable=False),
        migrations.RemoveConstraint(
            model_name="billingnotice",
            name="billing_notice_trial_tier_once_per_subscription",
        ),
        migrations.RemoveField(model_name="billingnotice", name="subscription"),
        migrations.AlterField(
            model_name="billingnotice",
            name="kind",
            field=models.CharField(
                choices=[
                    ("rent_reminder", "Rent reminder"),
                    ("overdue", "Overdue notice"),
                    ("lease_expiry", "Lease expiry alert"),
                    ("autopay_precharge", "Autopay pre-charge notice"),
                    ("autopay_enrollment", "Autopay enrollment reminder"),
                ],
                max_length=20,
            ),
        ),
        migrations.RemoveField(model_name="dailysnapshot", name="active_subscriptions"),
        migrations.RemoveField(model_name="dailysnapshot", name="churned_subscriptions"),
        migrations.RemoveField(model_name="dailysnapshot", name="mrr"),
        migrations.RemoveField(model_name="dailysnapshot", name="new_subscriptions"),
        migrations.RemoveField(model_name="dailysnapshot", name="trial_subscriptions"),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="Catalog"),
                migrations.DeleteModel(name="Subscription"),
                migrations.DeleteModel(name="Account"),
                migrations.DeleteModel(name="Plan"),
            ],
        ),
    ]
