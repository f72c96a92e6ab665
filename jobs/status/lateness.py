"""The one definition of a *late* job, used by the dashboard, ``/api/jobs/status``,
``manage.py jobs``, ``/health/``, the metrics and the late alerts.

A job is late when it is enabled, has a schedule, and the first slot beat owes it
(``Job.next_fire_at``) has gone unrecorded for longer than its grace: ``Job.late_at <= now``.
Beat moves both on in the transaction that records the slot (``jobs.scheduling.firing``), as a run or as a
recorded skip, so a job is late exactly when its schedule is not being kept: beat or the
database is down or behind. A run started by hand does not keep the schedule and does not
clear it. A new, re-enabled or rescheduled job owes only the slots after that moment.

Grace is the job's ``grace_seconds`` or, when empty, a tenth of the schedule's period clamped to
[60 s, 1 h] (``jobs.scheduling.cron.next_fire``): an every-minute job is late after a minute, a daily
one after an hour. Answering it is one range scan of jobs_job_late, however many jobs exist.
"""

from __future__ import annotations

from datetime import datetime

from jobs.models import Job
from jobs.scheduling.schedules import SCHEDULE_ROWS


def late_jobs(now: datetime, jobs: list[Job] | None = None) -> dict[int, tuple[Job, datetime]]:
    """Every late job (among ``jobs``, if given) with the first slot it missed."""
    # The alerts name each job's schedule: its task's rows come with it.
    late = Job.objects.filter(enabled=True, late_at__lte=now).select_related(*SCHEDULE_ROWS)
    wanted = None if jobs is None else {job.pk for job in jobs}
    return {job.pk: (job, job.next_fire_at) for job in late if wanted is None or job.pk in wanted}
