"""The one definition of a *late* job, used by the dashboard, ``/api/jobs/status``,
``manage.py jobs``, ``/health/``, the metrics and process-jobs' late alerts.

A job is late when

1. it is enabled and has a schedule (cron in its timezone, or an interval);
2. its last expected slot ``S`` -- the latest fire time with ``S + grace <= now`` -- falls
   after the job got its current schedule (``Job.schedule_since``: created, re-enabled or
   rescheduled), and
3. nothing was recorded for that slot: no run (of any status, recorded skips included)
   created at or after ``S`` (less beat's early-wake tolerance) and no finished run since.

Grace is the job's ``grace_seconds`` or, when empty, a tenth of the schedule's period
clamped to [60 s, 1 h]: an every-minute job is late after a minute, a daily one after an hour.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .models import Job, JobRun
from .schedules import SLOT_TOLERANCE, last_slot, recent_slots

MIN_GRACE = timedelta(seconds=60)
MAX_DEFAULT_GRACE = timedelta(hours=1)
GRACE_FRACTION = 0.1


def last_due_slot(job: Job, at: datetime) -> datetime | None:
    """The job's latest fire time at or before ``at``."""
    return last_slot(job.cron_expression, job.interval_seconds, job.timezone, at)


def schedule_period(job: Job, at: datetime) -> timedelta | None:
    """Time between the two fire times before ``at`` (the interval itself for intervals)."""
    if job.interval_seconds:
        return timedelta(seconds=job.interval_seconds)
    slots = recent_slots(job.cron_expression, job.interval_seconds, job.timezone, at, 2)
    return slots[1] - slots[0] if len(slots) == 2 else None


def grace_for(job: Job, at: datetime) -> timedelta:
    if job.grace_seconds is not None:
        return timedelta(seconds=job.grace_seconds)
    period = schedule_period(job, at)
    if period is None:
        return MIN_GRACE
    return min(max(period * GRACE_FRACTION, MIN_GRACE), MAX_DEFAULT_GRACE)


def expected_slot(job: Job, now: datetime) -> datetime | None:
    """The last slot whose grace has expired by ``now``, if the job had its schedule then."""
    if not job.enabled or not (job.cron_expression or job.interval_seconds):
        return None
    slot = last_due_slot(job, now - grace_for(job, now))
    if slot is None or slot < job.schedule_since:
        return None
    return slot


def missed_slot(job: Job, now: datetime, last_recorded: datetime | None) -> datetime | None:
    """The slot that makes the job late, or None. ``last_recorded``: when the job's newest run
    row was created (None if it has none)."""
    slot = expected_slot(job, now)
    if slot is None:
        return None
    seen = [moment for moment in (job.last_run_at, last_recorded) if moment is not None]
    if seen and max(seen) >= slot - SLOT_TOLERANCE:
        return None
    return slot


def is_late(job: Job, now: datetime, last_recorded: datetime | None) -> bool:
    return missed_slot(job, now, last_recorded) is not None


def late_jobs(now: datetime, jobs: list[Job] | None = None) -> dict[int, tuple[Job, datetime]]:
    """Every late job with its missed slot: one query for the jobs, then one indexed
    ``EXISTS`` (jobs_jobrun_job_created) per job whose statistics alone do not clear it."""
    jobs = list(Job.objects.filter(enabled=True)) if jobs is None else jobs
    found = {}
    for job in jobs:
        slot = missed_slot(job, now, None)
        if slot is None:
            continue
        if JobRun.objects.filter(job=job, created_at__gte=slot - SLOT_TOLERANCE).exists():
            continue
        found[job.pk] = (job, slot)
    return found
