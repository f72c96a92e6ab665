"""Values out of the bounds the next migration makes constraints of, brought to the nearest bound
first, in a migration of their own: on PostgreSQL a table whose rows were just updated in the
same transaction cannot be altered while deferred foreign-key checks are pending."""

from django.db import migrations

# The bounds of jobs.models.jobs, as they were when this migration was written.
BOUNDS = {
    "interval_seconds": (1, 31536000),
    "timeout_seconds": (1, 604800),
    "max_retries": (0, 25),
    "retry_backoff_seconds": (0, 86400),
    "expected_duration_seconds": (1, 604800),
    "grace_seconds": (0, 31536000),
    "catch_up_limit": (1, 1000),
    "escalate_after_failures": (1, 1000),
}


def clamp_to_bounds(apps, schema_editor):
    """Bring a value stored out of range to its nearest bound, so the constraints can be added
    (an interval of more than a year never fired anyway: its dates did not fit a datetime)."""
    Job = apps.get_model("jobs", "Job")
    for field, (low, high) in BOUNDS.items():
        Job.objects.filter(**{f"{field}__lt": low}).update(**{field: low})
        Job.objects.filter(**{f"{field}__gt": high}).update(**{field: high})


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0011_apikey_owner"),
    ]

    operations = [
        migrations.RunPython(clamp_to_bounds, migrations.RunPython.noop),
    ]
