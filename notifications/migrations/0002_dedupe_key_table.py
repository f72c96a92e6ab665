"""Dedupe keys move to their own table (see NotificationKey): create it, copy the keys of
existing messages, then drop the unique index the drain paid for on every status change."""

import django.db.models.deletion
from django.db import migrations, models

COPY_KEYS = """
INSERT INTO notifications_notificationkey (key, notification_id)
SELECT dedupe_key, id FROM notifications_notification WHERE dedupe_key IS NOT NULL
"""


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="NotificationKey",
            fields=[
                ("key", models.CharField(max_length=200, primary_key=True, serialize=False)),
                (
                    "notification",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="dedupe",
                        to="notifications.notification",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(COPY_KEYS, reverse_sql=migrations.RunSQL.noop),
        migrations.RemoveConstraint(
            model_name="notification",
            name="notifications_notification_unique_dedupe_key",
        ),
    ]
