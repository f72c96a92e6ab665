"""Test set-up for jobs that beat has owed slots to for a while (beat was down, or the job was
created long ago and nothing fired it since)."""

from __future__ import annotations

from datetime import datetime

from jobs.models import Job
from jobs.scheduling.cron import next_fire


def owe_since(job: Job, moment: datetime) -> Job:
    """The job as if created at ``moment`` with none of its slots since recorded."""
    upcoming = next_fire(job.cron_expression, job.interval_seconds, job.timezone, moment, job.grace_seconds)
    Job.objects.filter(pk=job.pk).update(created_at=moment, next_fire_at=upcoming.at, late_at=upcoming.late_at)
    job.refresh_from_db()
    return job
