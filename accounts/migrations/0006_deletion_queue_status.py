"""DeletionRequest gets a status (and the job's progress columns); existing rows take theirs from
their timestamps before the constraints that tie the two together are added."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import F


def statuses_from_timestamps(apps, schema_editor):
    DeletionRequest = apps.get_model("accounts", "DeletionRequest")
    DeletionRequest.objects.filter(cancelled_at__isnull=False).update(status="cancelled")
    DeletionRequest.objects.filter(completed_at__isnull=False).update(status="completed", started_at=F("completed_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_stripe_ids"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="deletionrequest",
            name="accounts_deletionrequest_cancelled_or_completed",
        ),
        migrations.RemoveConstraint(
            model_name="deletionrequest",
            name="accounts_deletionrequest_one_open_per_account",
        ),
        migrations.RemoveIndex(
            model_name="deletionrequest",
            name="accounts_deletion_open_idx",
        ),
        migrations.AddField(
            model_name="deletionrequest",
            name="last_error",
            field=models.TextField(blank=True, help_text="Why the last attempt stopped; the next run tries again."),
        ),
        migrations.AddField(
            model_name="deletionrequest",
            name="started_at",
            field=models.DateTimeField(blank=True, help_text="When the job took the request up.", null=True),
        ),
        migrations.AddField(
            model_name="deletionrequest",
            name="status",
            field=models.CharField(
                choices=[
                    ("pending", "Pending (in the grace period)"),
                    ("in_progress", "In progress"),
                    ("completed", "Completed"),
                    ("cancelled", "Cancelled"),
                ],
                default="pending",
                max_length=12,
            ),
        ),
        migrations.AddField(
            model_name="deletionrequest",
            name="stripe_cancelled_at",
            field=models.DateTimeField(
                blank=True, help_text="When the account's Stripe subscriptions were cancelled (step done).", null=True
            ),
        ),
        migrations.RunPython(statuses_from_timestamps, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="deletionrequest",
            index=models.Index(
                condition=models.Q(("status__in", ["pending", "in_progress"])),
                fields=["status", "requested_at"],
                name="accounts_deletion_open_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="deletionrequest",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["pending", "in_progress", "completed", "cancelled"])),
                name="accounts_deletionrequest_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="deletionrequest",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("completed_at__isnull", False), ("status", "completed")),
                    models.Q(models.Q(("status", "completed"), _negated=True), ("completed_at__isnull", True)),
                    _connector="OR",
                ),
                name="accounts_deletionrequest_completed_iff_time",
            ),
        ),
        migrations.AddConstraint(
            model_name="deletionrequest",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("cancelled_at__isnull", False), ("status", "cancelled")),
                    models.Q(models.Q(("status", "cancelled"), _negated=True), ("cancelled_at__isnull", True)),
                    _connector="OR",
                ),
                name="accounts_deletionrequest_cancelled_iff_time",
            ),
        ),
        migrations.AddConstraint(
            model_name="deletionrequest",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("status__in", ["pending", "cancelled"]), ("started_at__isnull", False), _connector="OR"
                ),
                name="accounts_deletionrequest_started_has_time",
            ),
        ),
        migrations.AddConstraint(
            model_name="deletionrequest",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["pending", "in_progress"])),
                fields=("account",),
                name="accounts_deletionrequest_one_open_per_account",
            ),
        ),
    ]
