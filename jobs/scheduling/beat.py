"""Cronhouse's beat scheduler: django-celery-beat's DatabaseScheduler, plus

* leadership: only the beat holding the lease (``jobs.scheduling.leader``) fires; others are hot standbys
  that take over once the leader stops renewing it (it died, or hangs);
* Cronhouse's jobs fired from their stored next slot (``jobs.scheduling.firing``): every due slot is
  recorded durably, set-based, in the transaction that moves the job past it, and sent to a
  worker after the commit; the catch-up policies apply to slots missed while beat was away;
* the database as the clock (``jobs.scheduling.clock``): the lease, due slots, lateness and the heartbeat
  use its time; this beat's offset from it is measured every tick, and corrects its sleep;
* the leader's housekeeping: a heartbeat row (``ServiceHeartbeat "beat"``) for ``/health/``, the
  reap / re-send sweep of process-jobs (its own run can lose its message or worker, and nothing
  else would re-send or reap it), the ``all`` catch-up backlog, pauses whose end has come
  (``jobs.scheduling.pauses``) and late episodes.

django-celery-beat still fires every other periodic task. ``GuardedEntry`` keeps one whose
crontab never occurs from stopping beat. This is one of the two places that use a library's
private names, because django-celery-beat has no public hook for it: a standby that becomes
leader must drop the entries it read while standing by (``_initial_read``, ``_heap``,
``_last_timestamp``). celery and django-celery-beat are pinned exactly;
tests/jobs/security/test_pinned_internals.py fails when an upgrade removes one of these names.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from celery.schedules import schedstate
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DatabaseError, InterfaceError, close_old_connections, connection, transaction
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler, ModelEntry

from jobs.running.maintenance import DispatchBackoff, lateness_process, runs_sweep
from jobs.scheduling.catch_up import catch_up_backlog
from jobs.scheduling.clock import clock_read
from jobs.scheduling.firing import due_jobs_fire, next_due_at
from jobs.scheduling.leader import Leadership, beat_heartbeat_write, fence_transaction
from jobs.scheduling.pauses import pauses_end
from jobs.scheduling.schedules import RUN_TASK

logger = logging.getLogger(__name__)
STANDBY_POLL_SECONDS = 1.0
# The longest beat sleeps: a new or edited job's first slot is seen within this, and the lease
# is renewed at least this often.
MAX_SLEEP_SECONDS = 1.0
# How long a stopping leader waits to give its lease up before leaving it to expire.
LEASE_RELEASE_WAIT_SECONDS = 5.0
# How long beat waits before asking again about an entry whose schedule never occurs.
NEVER_DUE_RECHECK_SECONDS = 3600.0


class GuardedEntry(ModelEntry):
    """A periodic task whose schedule never occurs (a crontab for 31 February, stored by a
    restore or raw SQL) is never due, instead of raising out of beat's loop and stopping every
    other schedule with it."""

    def is_due(self):
        try:
            return super().is_due()
        except RuntimeError as exc:  # celery's crontab: "unable to rollover, time specification ..."
            logger.error("beat: schedule of %s never occurs (%s); it will not fire", self.name, exc)
            return schedstate(is_due=False, next=NEVER_DUE_RECHECK_SECONDS)

    @classmethod
    def from_entry(cls, name, app=None, **entry):
        # Beats started together each install Celery's default entries (the results clean-up).
        # django-celery-beat checks the name is free before it inserts, so a beat that checks
        # just before another's insert commits fails with "already exists". The entry is there
        # by then: the second try finds it and updates it.
        try:
            return super().from_entry(name, app=app, **entry)
        except ValidationError:
            return super().from_entry(name, app=app, **entry)


class LeaderDatabaseScheduler(DatabaseScheduler):
    """django-celery-beat's scheduler for every other periodic task; Cronhouse's jobs are fired
    by ``jobs.scheduling.firing`` from their stored next slot, so beat's work grows with what is due, not
    with how many jobs exist (django-celery-beat compares every loaded entry on every tick)."""

    Entry = GuardedEntry

    def __init__(self, *args, **kwargs) -> None:
        self.leadership = Leadership() if settings.JOBS_BEAT_LEADER_LEASE else None
        self.leading = self.leadership is None
        self.clock_offset: float | None = None  # this beat's clock minus the database's (s)
        self.sweep_backoff = DispatchBackoff()
        self._next_maintenance = self._next_sweep = self._next_lateness_check = 0.0
        super().__init__(*args, **kwargs)

    def enabled_models_qs(self):
        # Cronhouse's jobs keep their schedule in their PeriodicTask's rows, but
        # jobs.scheduling.firing fires them (from Job.next_fire_at): beat loads only the other
        # periodic tasks, which are few. Not through django-celery-beat's own query: it builds
        # one CASE term per crontab row (its DISTINCT on timezones keeps the model's ordering
        # columns), thousands with many jobs, which made every reload take seconds. A row a job
        # owns is never sent, whatever it names: the job's own rules decide what runs
        # (docs/permissions.md), not an edit of its row.
        return self.Model.objects.enabled().exclude(task=RUN_TASK).filter(job__isnull=True)

    def tick(self, *args, **kwargs) -> float:
        if not self._lead():
            return STANDBY_POLL_SECONDS
        self._maintain()
        try:
            close_old_connections()
            report = due_jobs_fire(leadership=self.leadership)
        except (DatabaseError, InterfaceError) as exc:
            # The database is away (restart, failover): the slots stay owed (next_fire_at did
            # not move) and are recorded once it is back, by the catch-up rules if late.
            logger.error("beat: could not record due slots: %s", type(exc).__name__)
            close_old_connections()
            return STANDBY_POLL_SECONDS
        if report.lost_leadership:
            return STANDBY_POLL_SECONDS
        delay = super().tick(*args, **kwargs)
        return min(delay, self._until_next_slot(), MAX_SLEEP_SECONDS)

    def _lead(self) -> bool:
        """Take or keep the lease (by the database's clock, refused when this beat's clock is too
        far off); a standby that becomes leader reloads its entries first."""
        if self.leadership is None:
            return True
        try:
            close_old_connections()
            with transaction.atomic():
                fence_transaction()  # a standby never waits long on a hung leader's lock
                holds = self.leadership.lead()
            self.clock_offset = self.leadership.offset
        except (DatabaseError, InterfaceError) as exc:
            # Also what a standby sees while a hung leader still holds the lease row's lock.
            logger.warning("beat: could not reach the leader lease: %s", type(exc).__name__)
            close_old_connections()
            holds = False
        if holds and not self.leading:
            # Entries read while standing by are stale; reload before firing anything. Forget
            # the change stamp too: else the same tick sees "schedule changed" right after
            # this reload, reloads again, and fires every due entry twice.
            self._initial_read = True
            self._heap = None
            self._last_timestamp = None
        self.leading = holds
        return holds

    def _until_next_slot(self) -> float:
        """Seconds until the next slot, on the database's clock: this beat's own clock corrected
        by its measured offset."""
        try:
            first = next_due_at()
        except (DatabaseError, InterfaceError):
            return STANDBY_POLL_SECONDS
        if first is None:
            return MAX_SLEEP_SECONDS
        database_now = timezone.now() - timedelta(seconds=self.clock_offset or 0.0)
        return max((first - database_now).total_seconds(), 0.0)

    def _maintain(self) -> None:
        """Leader's housekeeping between ticks, by the database's clock (read once here): every
        JOBS_BEAT_HEARTBEAT_SECONDS the heartbeat (with this beat's clock offset), catch-up
        backlog and late episodes; the reap / re-send sweep (``runs_sweep``, so process-jobs
        cannot wedge itself) as often, or after 1, 2, 4, 5, 5 ... s while the broker is away
        (``DispatchBackoff``), so queued runs go out within seconds of its return."""
        clock = time.monotonic()
        housekeeping = clock >= self._next_maintenance
        if not housekeeping and clock < self._next_sweep:
            return
        try:
            close_old_connections()
            reading = clock_read()
            self.clock_offset = reading.offset
            if housekeeping:
                self._next_maintenance = clock + settings.JOBS_BEAT_HEARTBEAT_SECONDS
                beat_heartbeat_write(now=reading.db, offset=reading.offset)
            if clock >= self._next_sweep:
                swept = runs_sweep(now=reading.db, stop_on_dispatch_failure=True)
                self._next_sweep = clock + self.sweep_backoff.after(failed=bool(swept["dispatch_failed"]))
            if housekeeping:
                catch_up_backlog(now=reading.db)
                pauses_end(now=reading.db)  # pauses whose end has come, before their next slot
            if clock >= self._next_lateness_check:
                # Here as well as in process-jobs: an alert then follows a slot's grace expiry
                # within one check period instead of up to a minute (process-jobs' period).
                self._next_lateness_check = clock + settings.JOBS_LATENESS_CHECK_SECONDS
                lateness_process(now=reading.db)
        except (DatabaseError, InterfaceError) as exc:
            logger.error("beat: housekeeping failed: %s", type(exc).__name__)
            close_old_connections()

    def close(self) -> None:
        if self.leadership is not None and self.leading:
            # Celery calls close() from its SIGTERM handler, which may interrupt this thread in
            # the middle of a query: this thread's connection is then busy, and a second query on
            # it would wait for ever. So the lease is given up on a connection of its own, for a
            # few seconds at most; if that fails, the lease expires by itself.
            releaser = threading.Thread(target=self._lease_release, name="beat-lease-release", daemon=True)
            releaser.start()
            releaser.join(timeout=LEASE_RELEASE_WAIT_SECONDS)
        super().close()

    def _lease_release(self) -> None:
        try:
            self.leadership.release()
        except (DatabaseError, InterfaceError):
            pass  # the lease expires by itself
        finally:
            connection.close()  # this thread's own connection
