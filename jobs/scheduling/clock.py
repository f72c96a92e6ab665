"""The database is the clock: one clock for every beat and worker.

Lease expiry, the leader's "now" for due slots, lateness and the beat's heartbeat all use the
database server's time (``db_now``), read in the transaction that needs it: PostgreSQL's
``clock_timestamp()``, SQLite's ``strftime('%Y-%m-%d %H:%M:%f', 'now')`` (in-process, so the
embedded mode's one process is its own database clock). A beat whose host clock runs ahead
therefore neither takes a healthy leader's lease early nor fires a slot before its time.

Each beat still measures its own offset (process clock minus database clock) every tick
(``ClockWatch``): it is shown on ``/health/`` and the dashboard (the leader's), logged at WARNING
above JOBS_CLOCK_SKEW_WARN_SECONDS, and above JOBS_CLOCK_SKEW_MAX_SECONDS the beat refuses to
lead: anything else it does by its own clock (Celery's other periodic tasks, its log times)
would be that far off.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

logger = logging.getLogger(__name__)
# How often a lasting skew is logged again (seconds): once a tick would flood the log.
SKEW_LOG_EVERY_SECONDS = 60.0


def db_now() -> datetime:
    """The database server's current time (aware, UTC), one SELECT on this connection."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # clock_timestamp(), not now(): now() is the transaction's start, which a long
            # transaction would leave behind.
            cursor.execute("SELECT clock_timestamp()")
            return cursor.fetchone()[0].astimezone(UTC)
        cursor.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
        return datetime.fromisoformat(cursor.fetchone()[0]).replace(tzinfo=UTC)


@dataclass(frozen=True)
class ClockReading:
    """The database's time and this process's offset from it (seconds; positive: ahead)."""

    db: datetime
    offset: float

    def as_db_time(self, local: datetime) -> datetime:
        """A moment of this process's clock on the database's clock."""
        return local - timedelta(seconds=self.offset)


def clock_read() -> ClockReading:
    """Read the database clock and this process's offset from it. The process clock is read
    before and after the query and their midpoint compared, so the round trip is no offset."""
    before = timezone.now()
    database = db_now()
    after = timezone.now()
    local = before + (after - before) / 2
    return ClockReading(db=database, offset=round((local - database).total_seconds(), 3))


def offset_text(offset: float | None) -> str:
    return "unknown" if offset is None else f"{offset:+.1f} s"


class ClockWatch:
    """One process's view of its offset: whether it may lead, and the log lines about it."""

    def __init__(self, who: str = "beat") -> None:
        self.who = who
        self.offset: float | None = None
        # "ok", "skewed" (warned) or "refused" (may not lead); None before the first reading,
        # so the first offset is always logged.
        self.state: str | None = None
        self._logged_at = 0.0

    def observe(self, reading: ClockReading) -> bool:
        """Record the offset and log a change of state (or a lasting skew once a minute);
        False when the offset is too large to lead."""
        self.offset = reading.offset
        skew = abs(reading.offset)
        state = (
            "refused"
            if skew > settings.JOBS_CLOCK_SKEW_MAX_SECONDS
            else "skewed"
            if skew > settings.JOBS_CLOCK_SKEW_WARN_SECONDS
            else "ok"
        )
        clock = time.monotonic()
        if state != self.state or (state != "ok" and clock - self._logged_at >= SKEW_LOG_EVERY_SECONDS):
            self._log(state, reading.offset)
            self._logged_at = clock
        self.state = state
        return state != "refused"

    def _log(self, state: str, offset: float) -> None:
        text = offset_text(offset)
        if state == "refused":
            logger.error(
                "%s: clock offset %s from the database exceeds JOBS_CLOCK_SKEW_MAX_SECONDS=%s; "
                "refusing to lead (standing by) until this host's clock is fixed",
                self.who,
                text,
                settings.JOBS_CLOCK_SKEW_MAX_SECONDS,
            )
        elif state == "skewed":
            logger.warning(
                "%s: clock offset %s from the database exceeds JOBS_CLOCK_SKEW_WARN_SECONDS=%s; "
                "schedules follow the database's clock",
                self.who,
                text,
                settings.JOBS_CLOCK_SKEW_WARN_SECONDS,
            )
        else:
            logger.info("%s: clock offset %s from the database, within limits", self.who, text)
