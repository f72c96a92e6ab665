"""A PostgreSQL session advisory lock that makes one beat the leader.

The lock lives on its own connection: if the leader dies, PostgreSQL drops the connection
and the lock with it, and a standby's next try wins. On SQLite (embedded mode, one beat)
there is no lock to take and every beat leads.
"""

from __future__ import annotations

import logging

import psycopg
from django.conf import settings
from django.db import connection

logger = logging.getLogger(__name__)


def _conninfo() -> dict:
    db = settings.DATABASES["default"]
    params = {
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "autocommit": True,
        "connect_timeout": 5,
        # Notice a vanished server within ~15 s instead of TCP's default hours.
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "application_name": "cronhouse-beat-leader",
    }
    return {k: v for k, v in params.items() if v is not None}


class LeaderLock:
    def __init__(self, key: int) -> None:
        self.key = key
        self.conn: psycopg.Connection | None = None
        self.held = False

    @staticmethod
    def applies() -> bool:
        return connection.vendor == "postgresql" and settings.JOBS_BEAT_ADVISORY_LOCK

    def ensure(self) -> bool:
        """True if this process holds the lock now (checking a held lock is still alive)."""
        try:
            if self.held:
                self.conn.execute("SELECT 1")
                return True
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(**_conninfo())
            self.held = bool(self.conn.execute("SELECT pg_try_advisory_lock(%s)", [self.key]).fetchone()[0])
            if self.held:
                logger.info("beat: acquired leader lock %s; this beat now fires schedules", self.key)
            return self.held
        except psycopg.Error as exc:
            if self.held:
                logger.warning("beat: lost leader lock connection (%s); standing by", type(exc).__name__)
            self.release()
            return False

    def release(self) -> None:
        self.held = False
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg.Error:
                pass
        self.conn = None
