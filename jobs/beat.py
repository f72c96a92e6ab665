"""Cronhouse's beat scheduler: django-celery-beat's DatabaseScheduler, plus

* leadership: only the beat holding the PostgreSQL advisory lock fires; others are hot
  standbys that take over within a second or two of the leader's death;
* durable ticks: for a Cronhouse job the scheduler records the run row itself (with the
  slot it fires) instead of sending a message, so a tick is never lost to a dead broker
  and two beats firing one slot make one run.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, InterfaceError, close_old_connections
from django.utils import timezone
from django_celery_beat.schedulers import DatabaseScheduler

from .leader import LeaderLock
from .runner import run_trigger_scheduled
from .sync import RUN_TASK

logger = logging.getLogger(__name__)
STANDBY_POLL_SECONDS = 1.0


class LeaderDatabaseScheduler(DatabaseScheduler):
    def __init__(self, *args, **kwargs) -> None:
        self.leader_lock = LeaderLock(settings.JOBS_BEAT_LOCK_KEY) if LeaderLock.applies() else None
        self.leading = self.leader_lock is None
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
                return STANDBY_POLL_SECONDS
        return super().tick(*args, **kwargs)

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        if entry.task != RUN_TASK:
            return super().apply_async(entry, producer=producer, advance=advance, **kwargs)
        entry = self.reserve(entry) if advance else entry
        job_id = (entry.kwargs or {}).get("job_id")
        try:
            close_old_connections()
            return run_trigger_scheduled(job_id=job_id, fired_at=timezone.now())
        except (DatabaseError, InterfaceError) as exc:
            # The database is away (restart, failover): this tick is lost to us, but the
            # next one fires and the catch-up rules apply. Beat itself must keep running.
            logger.error("beat: could not record tick of %s: %s", entry.name, type(exc).__name__)
            close_old_connections()
            return None
        finally:
            self._tasks_since_sync += 1
            if self.should_sync():
                self._do_sync()

    def close(self) -> None:
        if self.leader_lock is not None:
            self.leader_lock.release()
        super().close()
