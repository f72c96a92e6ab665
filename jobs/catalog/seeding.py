"""The idempotent seeding of the jobs the project ships (``jobs.catalog.definitions``), through the
one validation (``jobs.catalog.validation``)."""

from __future__ import annotations

from django.db import transaction

from jobs.catalog.definitions import JobDefinition
from jobs.catalog.validation import job_full_clean
from jobs.models import Job

# Fields an admin may tune; seeding updates one only while it still holds the seeded value.
TUNABLE_FIELDS = (
    "description",
    "command",
    "cron_expression",
    "interval_seconds",
    "timezone",
    "config",
    "enabled",
    "timeout_seconds",
    "max_retries",
    "retry_backoff_seconds",
    "expected_duration_seconds",
    "housekeeping",
)


@transaction.atomic
def job_seed(*, definition: JobDefinition) -> str:
    """Create the job, or bring untouched fields up to date. Returns created/updated/unchanged."""
    defaults = definition.defaults()
    job = Job.objects.select_for_update().filter(name=definition.name).first()
    if job is None:
        job = Job(name=definition.name, seed_defaults=defaults, **defaults)
        job_full_clean(job)
        job.save()
        return "created"
    changed = []
    for name in TUNABLE_FIELDS:
        seeded = job.seed_defaults.get(name, getattr(job, name))
        if getattr(job, name) == seeded and seeded != defaults[name]:
            setattr(job, name, defaults[name])
            changed.append(name)
    if job.seed_defaults != defaults:
        job.seed_defaults = defaults
        job.save()
    return "updated" if changed else "unchanged"
