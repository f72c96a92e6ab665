"""A job's versions now hold its queue, jitter, overlap policy, window action and chain deadline.

Each job's latest version is completed with the job's current values of these fields: until now a
change to them recorded no version, so the current values are the state the latest version stands
for. Without this, the first save of every job would record a version that changed nothing. Older
versions stay as they were recorded; restoring one leaves these fields as they are.
"""

from django.db import migrations
from django.db.models import OuterRef, Subquery

ADDED = ("queue", "jitter_seconds", "overlap", "max_concurrent", "window_action", "chain_deadline_seconds")
CHUNK = 1000


def latest_versions_complete(apps, schema_editor):
    Job = apps.get_model("jobs", "Job")
    JobVersion = apps.get_model("jobs", "JobVersion")
    ids = list(Job.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        current = {row["pk"]: row for row in Job.objects.filter(pk__in=chunk).values("pk", *ADDED)}
        newest = JobVersion.objects.filter(job_id=OuterRef("job_id")).order_by("-number").values("number")[:1]
        versions = list(JobVersion.objects.filter(job_id__in=chunk, number=Subquery(newest)))
        for version in versions:
            values = current[version.job_id]
            version.snapshot = {
                **version.snapshot,
                **{name: values[name] for name in ADDED if name not in version.snapshot},
            }
        JobVersion.objects.bulk_update(versions, ["snapshot"])


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0027_job_queue_and_jitter"),
    ]

    operations = [
        migrations.RunPython(latest_versions_complete, migrations.RunPython.noop),
    ]
