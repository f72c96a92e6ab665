"""Reads for lists of jobs: status and next run without a query per job."""

from __future__ import annotations

from datetime import datetime

from .lateness import late_jobs
from .models import Job, JobRun
from .schedules import upcoming_runs

LATE = "late"


def jobs_with_active_flag(now: datetime | None = None):
    """Every job with ``current_status``: disabled / running / late / failed / idle (late by
    ``jobs.lateness``, the definition the dashboard and the API use)."""
    active_job_ids = set(JobRun.objects.filter(status__in=JobRun.ACTIVE_STATUSES).values_list("job_id", flat=True))
    jobs = list(Job.objects.select_related("webhook_handler").order_by("name"))
    late = late_jobs(now, jobs) if now is not None else {}
    for job in jobs:
        job.current_status = job.status(job.pk in active_job_ids)
        if job.pk in late and job.current_status in (Job.Status.IDLE, Job.Status.FAILED):
            job.current_status = LATE
    return jobs


def job_next_run(job: Job, now: datetime) -> datetime | None:
    if not job.enabled:
        return None
    return upcoming_runs(job.cron_expression, job.interval_seconds, job.timezone, now, count=1)[0]
