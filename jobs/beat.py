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

What a tick books is ``jobs.ticks``; this module is only the scheduler. A Cronhouse cron job's
entry fires on ``JobCronSchedule`` (``jobs.schedules``, Debian cron's rules), not on Celery's crontab.
It is one of the two places that use a library's private names, because django-celery-beat has no public hook for
them: a standby that becomes leader must drop the entries it read while standing by
(``_initial_read``, ``_heap``, ``_last_timestamp``), and ``apply_async`` keeps Celery's sync
bookkeeping (``_tasks_since_sync``, ``_do_sync``). celery and django-celery-beat are pinned
exactly; tests/jobs/test_pinned_internals.py fails when an upgrade removes one of these names.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from celery.schedules import BaseSchedule, schedstate
from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections, transaction
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from .leader import LeaderLock
from .maintenance import lateness_process, runs_sweep
from .schedules import next_run_times
from .sync import RUN_TASK
from .ticks import beat_heartbeat_write, catch_up_backlog, tick_fire

logger = logging.getLogger(__name__)
STANDBY_POLL_SECONDS = 1.0
SWEEP_BACKOFF_SECONDS = 60.0
# Ticks due together are recorded in one transaction of at most this many, collected for at
# most this long (the first one's lag grows by that much at worst).
FIRE_BATCH_MAX = 500
FIRE_BATCH_SECONDS = 0.5


# How long beat waits before asking again about an entry whose schedule never occurs.
NEVER_DUE_RECHECK_SECONDS = 3600.0


class JobCronSchedule(BaseSchedule):
    """A Cronhouse job's cron expression in its timezone, through Celery's documented custom
    schedule interface: beat fires at exactly the times ``jobs.schedules`` shows (Debian cron's
    rules), not at Celery's crontab's, which requires both restricted day fields to match."""

    def __init__(self, cron_expression: str, timezone: str, nowfun=None, app=None) -> None:
        super().__init__(nowfun=nowfun, app=app)
        self.cron_expression = cron_expression
        self.timezone = timezone

    def next_after(self, moment: datetime) -> datetime | None:
        times = next_run_times(self.cron_expression, self.timezone, self.maybe_make_aware(moment), count=1)
        return times[0] if times else None

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        following = self.next_after(last_run_at)
        if following is None:
            return timedelta(seconds=NEVER_DUE_RECHECK_SECONDS)
        return following - self.maybe_make_aware(self.now())

    def is_due(self, last_run_at: datetime) -> schedstate:
        """Due once the first fire time after the entry's last run has come (once, however many
        were missed: the catch-up policies decide about the others); ``next`` is the seconds
        until the fire time after that, or after now."""
        now = self.maybe_make_aware(self.now())
        due_at = self.next_after(last_run_at)
        if due_at is None:
            return schedstate(is_due=False, next=NEVER_DUE_RECHECK_SECONDS)
        if due_at > now:
            return schedstate(is_due=False, next=(due_at - now).total_seconds())
        following = self.next_after(now)
        wait = (following - now).total_seconds() if following else NEVER_DUE_RECHECK_SECONDS
        return schedstate(is_due=True, next=wait)

    def __eq__(self, other) -> bool:
        # Beat compares entries to decide whether the schedule changed: compare what fires.
        if isinstance(other, JobCronSchedule):
            return (self.cron_expression, self.timezone) == (other.cron_expression, other.timezone)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.cron_expression, self.timezone))

    def __repr__(self) -> str:
        return f"<JobCronSchedule {self.cron_expression!r} {self.timezone}>"


def job_cron_schedule(model) -> JobCronSchedule | None:
    """The schedule beat fires a Cronhouse cron job on: the Job row's expression and timezone
    (read with the PeriodicTask by ``enabled_models_qs``). None for other periodic tasks and for
    interval jobs, which keep Celery's own schedules."""
    if model.task != RUN_TASK or model.crontab_id is None:
        return None
    job = getattr(model, "job", None)
    if job is None or not job.cron_expression:
        return None
    return JobCronSchedule(job.cron_expression, job.timezone)


class GuardedEntry(ModelEntry):
    """A Cronhouse cron job's entry fires on ``JobCronSchedule`` (the crontab row stays the store
    the admin shows). Any other entry whose schedule never occurs (a crontab for 31 February,
    stored by a restore or raw SQL: the form refuses it) is never due, instead of raising out of
    beat's loop and stopping every other schedule with it."""

    def __init__(self, model, app=None) -> None:
        super().__init__(model, app=app)
        schedule = job_cron_schedule(model)
        if schedule is not None:
            schedule.app = self.app
            self.schedule = schedule

    def is_due(self):
        try:
            return super().is_due()
        except RuntimeError as exc:  # celery's crontab: "unable to rollover, time specification ..."
            logger.error("beat: schedule of %s never occurs (%s); it will not fire", self.name, exc)
            return schedstate(is_due=False, next=NEVER_DUE_RECHECK_SECONDS)


class LeaderDatabaseScheduler(DatabaseScheduler):
    Entry = GuardedEntry

    def __init__(self, *args, **kwargs) -> None:
        self.leader_lock = LeaderLock(settings.JOBS_BEAT_LOCK_KEY) if LeaderLock.applies() else None
        self.leading = self.leader_lock is None
        # (entry name, job id, collected at (monotonic), fired at, entry's previous run):
        # ticks collected by apply_async, recorded together by _fire_pending.
        self._pending_ticks: list[tuple] = []
        super().__init__(*args, **kwargs)

    def enabled_models_qs(self):
        # The Job row comes with its PeriodicTask (one query for all entries), for job_cron_schedule.
        return super().enabled_models_qs().select_related("job")

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
