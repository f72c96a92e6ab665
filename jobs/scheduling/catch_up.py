"""Beside the leader's firing (``jobs.scheduling.firing``): the ``all`` catch-up policy's backlog, moved on
one slot at a time, and the leader's heartbeat row. Every row goes through the runner.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from django.conf import settings

from jobs.models import DEFAULT_CATCH_UP_LIMIT, Job, JobRun, ServiceHeartbeat
from jobs.operations.health import BEAT_HEARTBEAT
from jobs.running.runner import TriggerResult, run_trigger
from jobs.scheduling.cron import recent_slots
from jobs.scheduling.schedules import SCHEDULE_ROWS

logger = logging.getLogger(__name__)
Trigger = JobRun.Trigger
CatchUp = Job.CatchUp


def beat_heartbeat_write(*, now: datetime, offset: float | None = None) -> None:
    """The leader's heartbeat: ``now`` is the database's time, ``offset`` the leader's clock
    minus it (seconds), which /health/ and the dashboard show."""
    ServiceHeartbeat.objects.update_or_create(
        name=BEAT_HEARTBEAT,
        defaults={
            "seen_at": now,
            "host": socket.gethostname()[:200],
            "pid": os.getpid(),
            "clock_offset_seconds": offset,
        },
    )


def _tolerance() -> timedelta:
    return timedelta(seconds=settings.JOBS_CATCH_UP_TOLERANCE_SECONDS)


def missed_slots(job: Job, now: datetime) -> list[datetime]:
    """Policy ``all``: the job's slots among its ``catch_up_limit`` most recent that are overdue,
    fell after it got its schedule, and have no run row yet; oldest first."""
    candidates = [
        slot
        for slot in recent_slots(
            job.cron_expression, job.interval_seconds, job.timezone, now, job.catch_up_limit or DEFAULT_CATCH_UP_LIMIT
        )
        if slot >= job.schedule_since and now - slot > _tolerance()
    ]
    if not candidates:
        return []
    # The unique (job, scheduled_for, attempt) index answers this.
    recorded = set(JobRun.objects.filter(job=job, scheduled_for__in=candidates).values_list("scheduled_for", flat=True))
    return [slot for slot in candidates if slot not in recorded]


def catch_up_next(*, job: Job, now: datetime) -> TriggerResult | None:
    """Trigger the oldest missed slot of an ``all`` job, if it has no active run."""
    if JobRun.objects.filter(job=job, status__in=JobRun.ACTIVE_STATUSES).exists():
        return None
    missing = missed_slots(job, now)
    if not missing:
        return None
    logger.info("beat: catching up job=%s slot=%s (%s missed, policy all)", job.name, missing[0], len(missing))
    return run_trigger(job=job, triggered_by=Trigger.SCHEDULE, scheduled_for=missing[0])


def catch_up_backlog(*, now: datetime) -> int:
    """Move every ``all`` job's backlog on by one slot (the next when this run ends)."""
    started = 0
    for job in Job.objects.filter(enabled=True, catch_up=CatchUp.ALL).select_related(*SCHEDULE_ROWS):
        result = catch_up_next(job=job, now=now)
        started += int(bool(result and result.queued))
    return started
