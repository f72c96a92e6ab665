"""Single-statement versions of the two hottest runner steps, for PostgreSQL.

A no-op run through the ORM costs a handful of statements; at hundreds of runs a second
that bookkeeping, not the job, bounds throughput. PostgreSQL can claim a run and read its
job in one data-modifying CTE, and end a run and update its job's statistics in another.
Each statement is atomic on its own. Other databases use the ORM path in runner.py.
"""

from __future__ import annotations

from datetime import datetime

import psycopg
from django.db import connection

from .models import Job, JobRun

RUN_FIELDS = JobRun._meta.concrete_fields
JOB_FIELDS = Job._meta.concrete_fields


def applies() -> bool:
    return connection.vendor == "postgresql"


def _prepared_cursor() -> psycopg.Cursor:
    """A server-binding cursor on Django's connection: these two statements run hundreds of
    times a second, so PostgreSQL keeps their plans (``prepare=True``) instead of parsing
    and planning each call as Django's client-side binding would."""
    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)


def _columns(alias: str, fields) -> str:
    return ", ".join(f'{alias}."{f.column}"' for f in fields)


def _instance(model, fields, values):
    converted = []
    for field, value in zip(fields, values, strict=True):
        from_db = getattr(field, "from_db_value", None)
        converted.append(from_db(value, None, connection) if from_db and value is not None else value)
    return model.from_db(connection.alias, [f.attname for f in fields], converted)


_CLAIM = f"""
WITH claimed AS (
    UPDATE jobs_jobrun
       SET status = 'running', started_at = %(now)s, heartbeat_at = %(now)s,
           worker_host = %(host)s, worker_pid = %(pid)s
     WHERE id = %(run_id)s AND status = 'queued'
       AND (not_before IS NULL OR not_before <= %(due)s)
 RETURNING *
)
SELECT {_columns("claimed", RUN_FIELDS)}, {_columns("j", JOB_FIELDS)}
  FROM claimed JOIN jobs_job j ON j.id = claimed.job_id
"""


def claim(*, run_id: int, now: datetime, due: datetime, host: str, pid: int) -> JobRun | None:
    with _prepared_cursor() as cursor:
        cursor.execute(_CLAIM, {"run_id": run_id, "now": now, "due": due, "host": host, "pid": pid}, prepare=True)
        row = cursor.fetchone()
    if row is None:
        return None
    run = _instance(JobRun, RUN_FIELDS, row[: len(RUN_FIELDS)])
    run.job = _instance(Job, JOB_FIELDS, row[len(RUN_FIELDS) :])
    return run


_FINISH_SUCCESS = """
WITH ended AS (
    UPDATE jobs_jobrun
       SET status = 'succeeded', finished_at = %(finished_at)s, duration = %(duration)s,
           summary = %(summary)s, output = %(output)s, error = ''
     WHERE id = %(run_id)s AND status = 'running'
 RETURNING job_id
)
UPDATE jobs_job
   SET last_run_at = %(started_at)s, last_run_status = 'succeeded', last_duration = %(duration)s,
       last_success_at = %(finished_at)s, consecutive_failures = 0
  FROM ended
 WHERE jobs_job.id = ended.job_id
RETURNING jobs_job.alert_state
"""


def finish_success(*, run: JobRun, finished_at: datetime, summary: dict, output: str) -> str | None:
    """End a running run as succeeded and update its job; the job's alert state, or None if
    the run was no longer running (reaped meanwhile)."""
    summary_field = JobRun._meta.get_field("summary")
    params = {
        "run_id": run.pk,
        "started_at": run.started_at,
        "finished_at": finished_at,
        "duration": finished_at - run.started_at,
        "summary": summary_field.get_db_prep_value(summary, connection),
        "output": output,
    }
    with _prepared_cursor() as cursor:
        cursor.execute(_FINISH_SUCCESS, params, prepare=True)
        row = cursor.fetchone()
    return row[0] if row else None
