"""Which beat leads: a lease row (``LeaderLease``) in the database, on both databases.

The leader renews the lease every time round beat's loop (at least once a second) and a standby
tries to take it as often; a lease not renewed for JOBS_BEAT_LEASE_SECONDS passes to the first
standby that asks. That covers a leader that dies (SIGKILL, lost host) and one that stops
making progress while still connected (SIGSTOP, a wedged loop), which a session lock would not:
a hung process keeps its connection and its lock.

Fencing: ``renew`` is the first statement of every transaction that records slots
(``jobs.scheduling.firing``). It takes the lease row's lock until commit, so a takeover waits for that
commit, and a leader that lost the lease while hung records nothing when it resumes.

Clocks: expiry is written and compared in the database's time (``jobs.scheduling.clock``), read in the
transaction that renews, so a beat whose host clock is off neither takes a live leader's lease
early nor waits too long for a dead one's. ``lead`` also measures this beat's offset from that
clock; a beat off by more than JOBS_CLOCK_SKEW_MAX_SECONDS refuses to lead (and gives the lease
up if it held it).

On PostgreSQL each of those transactions sets ``idle_in_transaction_session_timeout``, so a
leader hung in the middle of one loses its session, and with it the row locks a standby would
otherwise wait on, and ``lock_timeout``, so a standby never blocks on them for long.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q

from jobs.models import LeaderLease, ServiceHeartbeat
from jobs.scheduling.clock import ClockWatch, clock_read

logger = logging.getLogger(__name__)
BEAT_LEASE = "beat"


class Leadership:
    """This beat's claim on the lease. ``hold`` takes or keeps it; ``renew`` fences a write."""

    def __init__(self, name: str = BEAT_LEASE) -> None:
        self.name = name
        self.holder = f"{socket.gethostname()[:120]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        self.leading = False
        self.row_exists = False
        self.clock = ClockWatch()

    @property
    def length(self) -> timedelta:
        return timedelta(seconds=settings.JOBS_BEAT_LEASE_SECONDS)

    def renew(self, now: datetime) -> bool:
        """Take the lease if it is free or expired, or extend ours; True if this beat holds it.
        Inside a transaction, the row stays locked until commit."""
        if not self.row_exists:
            LeaderLease.objects.get_or_create(
                name=self.name, defaults={"holder": "", "acquired_at": now, "expires_at": now - timedelta(seconds=1)}
            )
            self.row_exists = True
        lease = LeaderLease.objects.filter(name=self.name)
        kept = lease.filter(holder=self.holder, expires_at__gte=now).update(expires_at=now + self.length)
        taken = 0
        if not kept:
            free = Q(expires_at__lt=now) | Q(holder="")
            taken = lease.filter(free).update(holder=self.holder, acquired_at=now, expires_at=now + self.length)
        holds = bool(kept or taken)
        if holds != self.leading:
            logger.info("beat: %s the leader lease (%s)", "took" if holds else "lost", self.holder)
        self.leading = holds
        return holds

    @property
    def offset(self) -> float | None:
        """This beat's offset from the database clock at its last ``lead`` (seconds)."""
        return self.clock.offset

    def lead(self) -> bool:
        """Measure this beat's clock against the database's, then take or keep the lease by the
        database's time (``renew``); a beat too far off gives it up instead. Inside a transaction."""
        reading = clock_read()
        if not self.clock.observe(reading):
            if self.leading:
                self.release()
                logger.info("beat: gave up the leader lease (%s): clock too far off", self.holder)
            return False
        return self.renew(reading.db)

    def release(self) -> None:
        """Give the lease up at once (a clean shutdown), so a standby need not wait for expiry."""
        LeaderLease.objects.filter(name=self.name, holder=self.holder).update(holder="")
        self.leading = False


def fence_transaction() -> None:
    """PostgreSQL settings for this transaction of the leader (module docstring): if the process
    hangs inside it, PostgreSQL ends the session, and with it the row locks a standby would
    wait on; and a beat never waits long on a lock held by another."""
    if connection.vendor != "postgresql":
        return
    idle_ms = int(settings.JOBS_BEAT_LEASE_SECONDS * 1000 * 0.8)
    with connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL idle_in_transaction_session_timeout = {idle_ms}")
        cursor.execute(f"SET LOCAL lock_timeout = {idle_ms}")


# The leading beat's row in ServiceHeartbeat, which /health/ and the dashboard read.
BEAT_HEARTBEAT = "beat"


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
