"""The HTTP trigger's lookup and insert as one PostgreSQL statement.

``POST /api/jobs/run`` names a job and wants a queued run of it. Through the ORM that is a
SELECT of the job and an INSERT of the run: two round trips, two statements parsed and
planned, and a few hundred microseconds of query compilation in Python, on a path that
external schedulers may call hundreds of times a second. Here one prepared statement finds
the job, inserts the queued run if the job is enabled, and lets the partial unique index
(one active run per job) answer ``ON CONFLICT DO NOTHING`` instead of raising, so the
statement never breaks a caller's transaction. What the caller learns:

* no row: no such job;
* ``enabled`` false: nothing was written;
* ``run_id`` None: another run is active (the runner then records the skip, naming it);
* otherwise the new run's id; outside a transaction the run is committed on return.

Other databases take the ORM path in runner.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

from django.db import OperationalError

from . import run_sql
from .models import Job

# Every NOT NULL column of jobs_jobrun is written: the ORM fills its defaults in Python, the
# table has none. tests/surfaces/test_api_trigger_path.py compares a run inserted here with one
# inserted through the ORM, so a new column cannot drift silently.
_INSERT = """
WITH job AS (
    SELECT id, name, enabled, timeout_seconds FROM jobs_job WHERE {match}
), run AS (
    INSERT INTO jobs_jobrun (
        job_id, status, triggered_by, triggered_by_user_id, attempt, options, skip_reason,
        created_at, dispatched_at, summary, error, output, worker_host, celery_task_id, slow
    )
    SELECT id, 'queued', %(triggered_by)s, %(user_id)s, 1, '{{}}', '',
           %(now)s, %(dispatched_at)s, '{{}}', '', '', '', %(task_id)s, false
      FROM job
     WHERE enabled
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT job.id, job.name, job.enabled, job.timeout_seconds, (SELECT id FROM run) FROM job
"""
_BY_NAME = _INSERT.format(match="name = %(key)s")
_BY_ID = _INSERT.format(match="id = %(key)s")


JOB_COLUMNS = ["id", "name", "enabled", "timeout_seconds"]


@dataclass(frozen=True)
class Inserted:
    """What the statement returned: the job's JOB_COLUMNS and the new run's id (None: not inserted)."""

    database: str
    job_id: int
    job_name: str
    job_enabled: bool
    job_timeout_seconds: int
    run_id: int | None

    @cached_property
    def job(self) -> Job:
        """The job as a model instance, built on first access: the API answers a trigger from the
        fields above, and Job.from_db costs ~10 us of CPU. Only JOB_COLUMNS are loaded; any other
        field is read from the database on access."""
        row = (self.job_id, self.job_name, self.job_enabled, self.job_timeout_seconds)
        return Job.from_db(self.database, JOB_COLUMNS, row)


def insert_queued(
    *,
    name: str | None = None,
    job_id: int | None = None,
    triggered_by: str,
    user_id: int | None,
    now: datetime,
    dispatched_at: datetime | None,
    task_id: str,
) -> Inserted | None:
    """Find the job by ``name`` or ``job_id`` and insert its queued run; None if no such job."""
    params = {
        "key": name if name is not None else job_id,
        "triggered_by": triggered_by,
        "user_id": user_id,
        "now": now,
        "dispatched_at": dispatched_at,
        "task_id": task_id,
    }
    db = run_sql.default_database()
    # Django's own cursor binds client-side, so PostgreSQL would parse and plan the statement
    # every time; run_sql's cursor on the same connection lets it prepare the statement once.
    statement = _BY_NAME if name is not None else _BY_ID
    reused = db.connection is not None
    try:
        row = _execute(db, statement, params)
    except OperationalError:
        # Instead of Django's per-request health check (CONN_HEALTH_CHECKS: a SELECT 1 round
        # trip before every trigger, ~0.25 ms of CPU on the 2-core machine): a connection kept
        # from an earlier request that turns out dead (PostgreSQL restarted) is replaced once.
        # Sound even if the dead connection had committed the run before failing: the retry
        # then finds that run active and records a skip naming it; process-jobs sends its
        # message. Never inside a caller's transaction, which the failure already lost.
        if not reused or db.in_atomic_block:
            raise
        db.close()
        row = _execute(db, statement, params)
    if row is None:
        return None
    job_id, job_name, enabled, timeout_seconds, run_id = row
    return Inserted(db.alias, job_id, job_name, enabled, timeout_seconds, run_id)


# The skip the runner records when the insert above met an active run: the active run named
# (read in a statement of its own, so that a run committed a moment ago is seen) and the skipped
# run inserted, in one prepared statement. Through the ORM that was a SELECT, a BEGIN, an INSERT
# and a COMMIT, each compiled in Python and planned by PostgreSQL: a 409 took ~4 ms of CPU
# in-process against ~1 ms for a 202. Columns as _INSERT; the reason as runner._explain_conflict
# words it.
_SKIP = """
WITH active AS (
    SELECT id, status FROM jobs_jobrun
     WHERE job_id = %(job_id)s AND status IN ('queued', 'running')
     ORDER BY id
     LIMIT 1
)
INSERT INTO jobs_jobrun (
    job_id, status, triggered_by, triggered_by_user_id, attempt, options, skip_reason,
    created_at, finished_at, summary, error, output, worker_host, celery_task_id, slow, blocked_by_id
)
SELECT %(job_id)s, 'skipped', %(triggered_by)s, %(user_id)s, 1, '{}',
       COALESCE('run #' || active.id || ' is ' || active.status, 'another run was active'),
       %(now)s, %(now)s, '{}', '', '', '', '', false, active.id
  FROM (SELECT) AS one LEFT JOIN active ON true
RETURNING id, skip_reason, blocked_by_id
"""


@dataclass(frozen=True)
class Skipped:
    run_id: int
    skip_reason: str
    blocked_by_id: int | None


def insert_skipped(*, job_id: int, triggered_by: str, user_id: int | None, now: datetime) -> Skipped:
    """Record that a trigger of ``job_id`` was skipped because a run was active, naming that run
    (None if it ended in between)."""
    params = {"job_id": job_id, "triggered_by": triggered_by, "user_id": user_id, "now": now}
    return Skipped(*_execute(run_sql.default_database(), _SKIP, params))


def _execute(db, statement: str, params: dict) -> tuple | None:
    with db.wrap_database_errors, run_sql.prepared_cursor(db) as cursor:
        cursor.execute(statement, params, prepare=True)
        return cursor.fetchone()
