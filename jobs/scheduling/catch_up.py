"""Catch-up: what beat records for a job whose slot is more than JOBS_CATCH_UP_TOLERANCE_SECONDS
overdue (beat or the database was away), by the job's policy (``Job.catch_up``), all three here:

* ``latest`` runs the most recent slot once;
* ``skip`` records the most recent slot as a skipped run, so it is accounted for;
* ``all`` runs the missed slots one after another, oldest first, at most ``catch_up_limit`` of
  the most recent ones: one when the job is found overdue, the next each time the leader moves
  the backlog on (``catch_up_backlog``) and the job has no active run.

The leader's firing (``jobs.scheduling.firing``) records what ``catch_up_requests`` returns with
the rest of its burst. Every row goes through the runner.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings

from jobs.models import DEFAULT_CATCH_UP_LIMIT, Job, JobRun
from jobs.running.runner import TriggerRequest, runs_book
from jobs.scheduling.cron import last_slot, recent_slots
from jobs.scheduling.schedules import SCHEDULE_ROWS
from jobs.scheduling.windows import WindowBook

logger = logging.getLogger(__name__)
Trigger = JobRun.Trigger
CatchUp = Job.CatchUp


def catch_up_tolerance() -> timedelta:
    return timedelta(seconds=settings.JOBS_CATCH_UP_TOLERANCE_SECONDS)


def catch_up_requests(job: Job, slot: datetime, now: datetime) -> list[TriggerRequest]:
    """What to record for ``job``, owed ``slot`` and found overdue at ``now``, by its policy."""
    policy = job.catch_up or CatchUp.LATEST
    if policy == CatchUp.ALL:
        return _oldest_missed(job, now)
    latest = last_slot(job.cron_expression, job.interval_seconds, job.timezone, now) or slot
    if policy == CatchUp.SKIP:
        late_by = int((now - latest).total_seconds())
        reason = f"missed slot fired {late_by} s late; catch-up policy: skip"
        return [TriggerRequest(job, Trigger.SCHEDULE, scheduled_for=latest, skip_reason=reason)]
    logger.info("beat: catching up job=%s slot=%s (policy latest)", job.name, latest)
    return [TriggerRequest(job, Trigger.SCHEDULE, scheduled_for=latest)]


def missed_slots(job: Job, now: datetime) -> list[datetime]:
    """Policy ``all``: the job's slots among its ``catch_up_limit`` most recent that are overdue,
    fell after it got its schedule, and have no run row yet; oldest first."""
    candidates = [
        slot
        for slot in recent_slots(
            job.cron_expression, job.interval_seconds, job.timezone, now, job.catch_up_limit or DEFAULT_CATCH_UP_LIMIT
        )
        if slot >= job.schedule_since and now - slot > catch_up_tolerance()
    ]
    if not candidates:
        return []
    # The unique (job, scheduled_for, attempt) index answers this.
    recorded = set(JobRun.objects.filter(job=job, scheduled_for__in=candidates).values_list("scheduled_for", flat=True))
    return [slot for slot in candidates if slot not in recorded]


def _oldest_missed(job: Job, now: datetime) -> list[TriggerRequest]:
    """Policy ``all``: the oldest missed slot, unless a run of the job is still active (the next
    slot waits for its end instead of being recorded as a skip)."""
    if JobRun.objects.filter(job=job, status__in=JobRun.ACTIVE_STATUSES).exists():
        return []
    missing = missed_slots(job, now)
    if not missing:
        return []
    logger.info("beat: catching up job=%s slot=%s (%s missed, policy all)", job.name, missing[0], len(missing))
    return [TriggerRequest(job, Trigger.SCHEDULE, scheduled_for=missing[0])]


def catch_up_backlog(*, now: datetime) -> int:
    """Move every ``all`` job's backlog on by one slot (the next when this run ends); a slot
    inside a blackout window is skipped or deferred there as on time (``jobs.scheduling.windows``)."""
    jobs = list(Job.objects.filter(enabled=True, catch_up=CatchUp.ALL).select_related(*SCHEDULE_ROWS))
    requests = [request for job in jobs for request in _oldest_missed(job, now)]
    if not requests:
        return 0
    windows = WindowBook.load(now)
    windows.attach([request.job for request in requests])
    return sum(result.queued for result in runs_book(windows.apply(requests, now), now=now))
