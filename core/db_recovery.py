"""Workers recover from a database restart by themselves.

Celery's Django fixup keeps a worker's database connection across tasks
(CELERY_DB_REUSE_MAX, measured 5x faster) and closes it only every so many tasks, so after
PostgreSQL restarts, the next statement of every pool process meets a dead connection. Three
places deal with it, none of them on the happy path:

- ``with_reconnect``: the run's claim and the write of its outcome drop the broken connection
  and try again (the claim for a few seconds, the outcome for up to two minutes), so a run
  is neither left queued for the sweep nor, having finished, reaped and run a second time.
  Both are conditional UPDATEs whose row count says who won, so a repeat is safe.
- the heartbeat thread drops its connection on any error and reconnects on its next beat
  (``jobs.running.heartbeat``), so the reaper never sees a live run go silent.
- ``drop_broken_connections``: any other task that fails on the connection drops it; the next
  task connects afresh.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)
T = TypeVar("T")
CONNECTION_ERRORS = (OperationalError, InterfaceError)
# A fast restart takes a second or two; a failover, tens of seconds. Past these, the error
# stands: a claim stays queued for process-jobs to re-send, an outcome unrecorded is reaped.
CLAIM_RETRY_SECONDS = 10.0
FINISH_RETRY_SECONDS = 120.0
RETRY_PAUSE_SECONDS = 0.5


def connections_drop() -> None:
    """Close this thread's database connections; the next query opens a fresh one."""
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except Exception:  # already broken: closing it is all we wanted
            pass


def with_reconnect(operation: Callable[[], T], *, seconds: float, what: str) -> T:
    """``operation()``, tried again on a fresh connection while the database is unreachable.

    The first retry is immediate (a connection that died with an earlier restart); later ones
    pause, until ``seconds`` have passed. Only for operations that are safe to repeat, and never
    inside a caller's transaction: that is lost with its connection, and only the caller knows
    what to redo.
    """
    deadline = time.monotonic() + seconds
    tries = 0
    while True:
        try:
            return operation()
        except CONNECTION_ERRORS as exc:
            tries += 1
            in_transaction = any(c.in_atomic_block for c in connections.all(initialized_only=True))
            if in_transaction or (tries > 1 and time.monotonic() >= deadline):
                raise
            logger.warning("%s met a broken database connection (%s); reconnecting", what, type(exc).__name__)
            connections_drop()
            if tries > 1:
                time.sleep(RETRY_PAUSE_SECONDS)


def drop_broken_connections(sender=None, exception=None, **kwargs) -> None:
    if not isinstance(exception, CONNECTION_ERRORS):
        return
    logger.warning("task failed on the database connection (%s); reconnecting", type(exception).__name__)
    connections_drop()
