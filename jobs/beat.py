"""Cronhouse's beat scheduler: django-celery-beat's DatabaseScheduler, plus

* leadership: only the beat holding the PostgreSQL advisory lock fires; others are hot
  standbys that take over within a second or two of the leader's death;
* durable ticks: for a Cronhouse job the scheduler records the run row itself (with the
  slot it fires) instead of sending a message, so a tick is never lost to a dead broker
  and two beats firing one slot make one run;
* catch-up: a slot fired more than JOBS_CATCH_UP_TOLERANCE_SECONDS late (beat or the
  database was down) follows the job's policy -- ``latest`` runs it (django-celery-beat
  fires an overdue entry once, for the most recent slot), ``skip`` records it as skipped,
  ``all`` runs the missed slots one after another, oldest first, at most ``catch_up_limit``
  of the most recent ones. One active run per job still holds, so no policy floods;
* a heartbeat row (``ServiceHeartbeat "beat"``) the leader refreshes for ``/health/``, and
  the reap / re-send sweep of process-jobs run by the leader too (process-jobs' own run can
  lose its message or worker, and nothing else would re-send or reap it).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, IntegrityError, InterfaceError, close_old_connections, transaction
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from .health import BEAT_HEARTBEAT
from .lateness import recent_slots
from .leader import LeaderLock
from .maintenance import lateness_process, runs_sweep
from .models import DEFAULT_CATCH_UP_LIMIT, Job, JobRun, ServiceHeartbeat
from .runner import TriggerResult, run_trigger
from .schedules import slot_for_tick
from .sync import RUN_TASK

logger = logging.getLogger(__name__)
STANDBY_POLL_SECONDS = 1.0
SWEEP_BACKOFF_SECONDS = 60.0
# Ticks due together are recorded in one transaction of at most this many, collected for at
# most this long (the first one's lag grows by that much at worst).
FIRE_BATCH_MAX = 500
FIRE_BATCH_SECONDS = 0.5
Trigger = JobRun.Trigger
CatchUp = Job.CatchUp


class LeaderDatabaseScheduler(DatabaseScheduler):
    def __init__(self, *args, **kwargs) -> None:
        self.leader_lock = LeaderLock(settings.JOBS_BEAT_LOCK_KEY) if LeaderLock.applies() else None
        self.leading = self.leader_lock is None
        # (entry name, job id, collected at (monotonic), fired at, entry's previous run):
        # ticks collected by apply_async, recorded together by _fire_pending.
        self._pending_ticks: list[tuple] = []
        super().__init__(*args, **kwargs)

    def tick(self, *args, **kwargs) -> float:
        if self.leader_lock is not None:
            holds = self.leader_lock.ensure()
            if holds and not self.leading:
                # Entries read while standing by are stale; reload before firing anything.
                # Forget the change stamp too: else the same tick sees "schedule changed"
                # right after this reload, reloads again, and fires every due entry twice.
                self._initial_read = True
                self._heap = None
                self._last_timestamp = None
            self.leading = holds
            if not holds:
                self._fire_pending()  # collected while leading; the slot constraint dedupes
                return STANDBY_POLL_SECONDS
        self._maintain()
        delay = super().tick(*args, **kwargs)
        pending = self._pending_ticks
        if delay == 0 and pending and len(pending) < FIRE_BATCH_MAX:
            if time.monotonic() - pending[0][2] < FIRE_BATCH_SECONDS:
                return 0  # more entries may be due this instant: collect them first
        self._fire_pending()
        return delay

    def _fire_pending(self) -> None:
        """Record every collected tick in one transaction, each in its own savepoint.

        At the top of a minute many jobs fall due together; one commit for all of them (instead
        of one WAL flush each) is what keeps the last job's lag near the first's. The messages
        go out after the commit (run_trigger's on_commit), so nothing is sent for a row that
        was not recorded.
        """
        pending, self._pending_ticks = self._pending_ticks, []
        if not pending:
            return
        try:
            close_old_connections()
            with transaction.atomic():
                # In job order: a second beat (lock disabled) writing the same rows then waits
                # for this one instead of deadlocking with it.
                for name, job_id, _collected, fired_at, last_fired in sorted(pending, key=lambda tick: tick[1] or 0):
                    try:
                        with transaction.atomic():
                            tick_fire(job_id=job_id, fired_at=fired_at, last_fired=last_fired)
                    except (DatabaseError, InterfaceError) as exc:
                        logger.error("beat: could not record tick of %s: %s", name, type(exc).__name__)
        except (DatabaseError, InterfaceError) as exc:
            # The database is away (restart, failover): these ticks are lost to us, but the
            # next ones fire and the catch-up rules apply. Beat itself must keep running.
            names = ", ".join(name for name, *_ in pending)
            logger.error("beat: could not record ticks of %s: %s", names, type(exc).__name__)
            close_old_connections()

    def _maintain(self) -> None:
        """Leader's housekeeping between ticks, every JOBS_BEAT_HEARTBEAT_SECONDS: heartbeat,
        reap and re-send (``runs_sweep``, so process-jobs cannot wedge itself), catch-up backlog."""
        clock = time.monotonic()
        if clock < getattr(self, "_next_maintenance", 0.0):
            return
        self._next_maintenance = clock + settings.JOBS_BEAT_HEARTBEAT_SECONDS
        try:
            close_old_connections()
            beat_heartbeat_write(now=timezone.now())
            if clock >= getattr(self, "_next_sweep", 0.0):
                swept = runs_sweep(now=timezone.now(), stop_on_dispatch_failure=True)
                # Broker away: stop paying its connection timeout every few seconds.
                self._next_sweep = clock + (SWEEP_BACKOFF_SECONDS if swept["dispatch_failed"] else 0)
            catch_up_backlog(now=timezone.now())
            if clock >= getattr(self, "_next_lateness_check", 0.0):
                # Here as well as in process-jobs: an alert then follows a slot's grace expiry
                # within one check period instead of up to a minute (process-jobs' period).
                self._next_lateness_check = clock + settings.JOBS_LATENESS_CHECK_SECONDS
                lateness_process(now=timezone.now())
        except (DatabaseError, InterfaceError) as exc:
            logger.error("beat: housekeeping failed: %s", type(exc).__name__)
            close_old_connections()

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        if entry.task != RUN_TASK:
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        last_fired = getattr(entry, "last_run_at", None)  # before reserve() moves it to now
        entry = self.reserve(entry) if advance else entry
        job_id = (entry.kwargs or {}).get("job_id")
        try:
            # Recorded by tick() once every entry due now is collected (_fire_pending).
            self._pending_ticks.append((entry.name, job_id, time.monotonic(), timezone.now(), last_fired))
            return None
        finally:
            self._tasks_since_sync += 1
            if self.should_sync():
                self._do_sync()

    def close(self) -> None:
        self._fire_pending()
        if self.leader_lock is not None:
            self.leader_lock.release()
        super().close()


# --- module functions (testable without a scheduler) ----------------------------------------


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
    overdue = is_overdue(job, slot, fired_at, last_fired)
    policy = job.catch_up or CatchUp.LATEST
    if overdue and policy == CatchUp.SKIP:
        return _record_missed(job, slot, fired_at)
    if overdue and policy == CatchUp.ALL:
        return catch_up_next(job=job, now=fired_at) or TriggerResult(None, "duplicate")
    if overdue:
        logger.info("beat: catching up job=%s slot=%s (policy latest)", job.name, slot)
    return run_trigger(job=job, triggered_by=Trigger.SCHEDULE, scheduled_for=slot)


def _record_missed(job: Job, slot: datetime, now: datetime) -> TriggerResult:
    """Policy ``skip``: the overdue slot becomes a recorded skip, so it is accounted for."""
    reason = f"missed slot fired {int((now - slot).total_seconds())} s late; catch-up policy: skip"
    try:
        with transaction.atomic():
            run = JobRun.objects.create(
                job=job,
                status=JobRun.Status.SKIPPED,
                triggered_by=Trigger.SCHEDULE,
                scheduled_for=slot,
                skip_reason=reason,
                finished_at=now,
            )
    except IntegrityError:
        return TriggerResult(None, "duplicate")  # another beat recorded it
    logger.info("run skipped job=%s run=%s reason=%s", job.name, run.pk, reason)
    return TriggerResult(run, "skipped")


def missed_slots(job: Job, now: datetime) -> list[datetime]:
    """Policy ``all``: the job's slots among its ``catch_up_limit`` most recent that are overdue,
    fell after it got its schedule, and have no run row yet; oldest first."""
    candidates = [
        slot
        for slot in recent_slots(job, now, job.catch_up_limit or DEFAULT_CATCH_UP_LIMIT)
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
