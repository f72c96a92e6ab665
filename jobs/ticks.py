"""What a beat tick does for one job: book the slot it fires, following the job's catch-up
policy when beat (or the database) was away, and the leader's heartbeat row.

Catch-up policies (``Job.catch_up``), applied when a tick is overdue (``is_overdue``):

* ``latest`` runs the tick's slot (django-celery-beat fires an overdue entry once, for the
  most recent slot);
* ``skip`` records that slot as a skipped run, so it is accounted for;
* ``all`` runs the missed slots one after another, oldest first, at most ``catch_up_limit``
  of the most recent ones.

One active run per job still holds, so no policy floods. Every row goes through the runner.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from .health import BEAT_HEARTBEAT
from .models import DEFAULT_CATCH_UP_LIMIT, Job, JobRun, ServiceHeartbeat
from .runner import TriggerResult, run_skip, run_trigger
from .schedules import recent_slots, slot_for_tick

logger = logging.getLogger(__name__)
Trigger = JobRun.Trigger
CatchUp = Job.CatchUp


def beat_heartbeat_write(*, now: datetime) -> None:
    ServiceHeartbeat.objects.update_or_create(
        name=BEAT_HEARTBEAT, defaults={"seen_at": now, "host": socket.gethostname()[:200], "pid": os.getpid()}
    )


def _tolerance() -> timedelta:
    return timedelta(seconds=settings.JOBS_CATCH_UP_TOLERANCE_SECONDS)


def is_overdue(job: Job, slot: datetime, fired_at: datetime, last_fired: datetime | None) -> bool:
    """Is this tick beat catching up (it, or the database, was away when the slot fell due)?

    Cron: the slot fell due more than the tolerance ago. Interval: django-celery-beat fires
    an interval entry every N seconds from its own last run, not on the epoch-aligned slot, so
    a tick is normally up to N seconds after its slot; it is overdue when beat's previous tick
    of the entry is more than N seconds plus the tolerance ago.
    """
    if job.interval_seconds:
        if last_fired is None:
            return False
        if timezone.is_naive(last_fired):
            last_fired = timezone.make_aware(last_fired, timezone.get_default_timezone())
        return fired_at - last_fired > timedelta(seconds=job.interval_seconds) + _tolerance()
    return fired_at - slot > _tolerance()


def tick_fire(*, job_id: int, fired_at: datetime, last_fired: datetime | None = None) -> TriggerResult | None:
    """A beat tick for one job: trigger the slot it fires, following the job's catch-up policy
    when the tick is overdue (see ``is_overdue``)."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        logger.warning("beat fired for missing job id=%s (orphan PeriodicTask)", job_id)
        return None
    slot = slot_for_tick(job.cron_expression, job.interval_seconds, job.timezone, fired_at)
    if slot is None:
        logger.warning("beat fired job=%s whose schedule %r never fires; nothing booked", job.name, job.cron_expression)
        return None
    overdue = is_overdue(job, slot, fired_at, last_fired)
    policy = job.catch_up or CatchUp.LATEST
    if overdue and policy == CatchUp.SKIP:
        late_by = int((fired_at - slot).total_seconds())
        reason = f"missed slot fired {late_by} s late; catch-up policy: skip"
        return run_skip(job=job, triggered_by=Trigger.SCHEDULE, scheduled_for=slot, reason=reason, now=fired_at)
    if overdue and policy == CatchUp.ALL:
        return catch_up_next(job=job, now=fired_at) or TriggerResult(None, "duplicate")
    if overdue:
        logger.info("beat: catching up job=%s slot=%s (policy latest)", job.name, slot)
    return run_trigger(job=job, triggered_by=Trigger.SCHEDULE, scheduled_for=slot)


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
    for job in Job.objects.filter(enabled=True, catch_up=CatchUp.ALL):
        result = catch_up_next(job=job, now=now)
        started += int(bool(result and result.queued))
    return started
