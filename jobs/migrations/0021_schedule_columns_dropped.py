"""A job's schedule moves into its django-celery-beat rows, step 2 (after 0020 filled them): the
three columns and their constraints go; a job's task outlives no job (PROTECT, deleted after it)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0020_schedule_in_beat_rows"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="job", name="jobs_job_exactly_one_schedule"),
        migrations.RemoveConstraint(model_name="job", name="jobs_job_interval_seconds_range"),
        migrations.RemoveField(model_name="job", name="cron_expression"),
        migrations.RemoveField(model_name="job", name="interval_seconds"),
        migrations.RemoveField(model_name="job", name="timezone"),
        migrations.AlterField(
            model_name="job",
            name="periodic_task",
            field=models.OneToOneField(
                blank=True,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                to="django_celery_beat.periodictask",
            ),
        ),
    ]
